// slim-train: the entry point. Parses the command line, starts MPI, runs the job, and
// maps every error to one message and the documented exit code (errors.h).
#include <c10/util/Exception.h>

#include <iostream>
#include <optional>

#include "launcher/command_line.h"
#include "launcher/run_job.h"
#include "runtime/comm/mpi_session.h"
#include "runtime/errors.h"
#include "runtime/logging.h"

namespace {

// Ends this rank with `code`. With several ranks the whole job is aborted, so that a
// rank that failed alone cannot leave the others waiting in a collective; a single rank
// finalises MPI and exits.
[[noreturn]] void Fail(slim::ExitCode code, const std::string& message,
                       std::optional<slim::comm::MpiSession>& session, int world_size) {
  slim::logging::Error(message);
  if (session && world_size > 1) slim::comm::MpiSession::AbortJob(static_cast<int>(code));
  session.reset();
  std::exit(static_cast<int>(code));
}

}  // namespace

int main(int argc, char** argv) {
  slim::launcher::CommandLine command;
  try {
    command = slim::launcher::ParseCommandLine(argc, argv);
  } catch (const slim::SlimError& e) {
    std::cerr << "slim-train: " << e.what() << "\n";
    return static_cast<int>(e.exit_code());
  }
  if (command.help) {
    std::cout << slim::launcher::UsageText();
    return 0;
  }
  if (command.version) {
    std::cout << "slim-train " << SLIM_VERSION << "\n";
    return 0;
  }

  int world_size = 1;
  std::optional<slim::comm::MpiSession> session;
  try {
    session.emplace(&argc, &argv);
    const auto placement = session->Placement();
    world_size = placement.world_size;
    slim::logging::SetRank(placement.rank);
    slim::launcher::RunJob(command, *session, placement);
  } catch (const slim::SlimError& e) {
    Fail(e.exit_code(), e.what(), session, world_size);
  } catch (const c10::Error& e) {
    Fail(slim::ExitCode::kDataOrModel, std::string("LibTorch: ") + e.what_without_backtrace(),
         session, world_size);
  } catch (const std::exception& e) {
    Fail(slim::ExitCode::kDataOrModel, std::string("unexpected error: ") + e.what(), session, world_size);
  }
  return 0;
}
