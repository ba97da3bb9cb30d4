// After start-up every rank learns whether all ranks started, so that a bad config or a
// missing file ends the job with one clean message and its exit code instead of an
// MPI_Abort, and a rank that failed alone cannot leave the others waiting.
#pragma once

#include <string>

namespace slim::launcher {

// Collective over MPI_COMM_WORLD. `local_code` is this rank's exit code (0 = started),
// `local_message` its error. Returns the highest code of all ranks. Prints this rank's
// error unless rank 0 failed with the same message (so identical config errors are
// printed once). Aborts the job when some rank does not arrive within `timeout_s`.
int AgreeOnStartup(int local_code, const std::string& local_message, int rank, double timeout_s);

}  // namespace slim::launcher
