// Rank-prefixed logging to stderr/stdout. Progress (Info) is printed by rank 0 only;
// warnings and errors by every rank. Lines are written whole, so ranks do not interleave
// within a line.
#pragma once

#include <string>

namespace slim::logging {

// Sets the rank used as prefix and to decide who prints progress. Call once at start-up.
void SetRank(int rank);
// Progress for the user: stdout, rank 0 only, "[rank 0] message".
void Info(const std::string& message);
// Something the user should look at: stderr, every rank, "[rank r] warning: message".
void Warning(const std::string& message);
// A fatal error: stderr, every rank, "[rank r] error: message".
void Error(const std::string& message);

}  // namespace slim::logging
