// slim-train: the entry point. Parses the command line, starts MPI, prepares the job,
// agrees with the other ranks that start-up worked, then trains. Every error becomes one
// message and the documented exit code (errors.h).
#include <c10/util/Exception.h>

#include <iostream>
#include <optional>

#include "launcher/command_line.h"
#include "launcher/run_job.h"
#include "launcher/startup_agreement.h"
#include "runtime/comm/mpi_session.h"
#include "runtime/base/errors.h"
#include "runtime/base/logging.h"
#include "runtime/base/stop_signals.h"

namespace {

// How long ranks wait for each other to finish start-up (loading models and data).
constexpr double kStartupTimeoutSeconds = 600;

struct Failure {
  slim::ExitCode code = slim::ExitCode::kSuccess;
  std::string message;
};

// Runs `body`, turning any exception into a Failure.
template <typename Body>
Failure Capture(Body&& body) {
  try {
    body();
  } catch (const slim::SlimError& e) {
    return {e.exit_code(), e.what()};
  } catch (const c10::Error& e) {
    return {slim::ExitCode::kDataOrModel, std::string("LibTorch: ") + e.what_without_backtrace()};
  } catch (const std::exception& e) {
    return {slim::ExitCode::kDataOrModel, std::string("unexpected error: ") + e.what()};
  }
  return {};
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

  std::optional<slim::comm::MpiSession> session;
  slim::comm::ProcessPlacement placement;
  Failure failure = Capture([&] {
    session.emplace(&argc, &argv);
    placement = session->Placement();
  });
  if (failure.code != slim::ExitCode::kSuccess) {
    std::cerr << "slim-train: " << failure.message << "\n";
    return static_cast<int>(failure.code);
  }
  slim::logging::SetRank(placement.rank);
  slim::InstallStopSignalHandlers();

  std::unique_ptr<slim::launcher::PreparedJob> job;
  failure = Capture([&] { job = slim::launcher::PrepareJob(command, *session, placement); });
  const int startup_code = slim::launcher::AgreeOnStartup(
      static_cast<int>(failure.code), failure.message, placement.rank, kStartupTimeoutSeconds);
  if (startup_code != 0) {
    job.reset();
    return startup_code;  // every rank failed or saw a failure: MPI finalises normally
  }

  int exit_code = 0;
  failure = Capture([&] { exit_code = slim::launcher::RunJob(command, placement, *job); });
  if (failure.code != slim::ExitCode::kSuccess) {
    slim::logging::Error(failure.message);
    // Other ranks may be waiting in a collective for this one: end the whole job.
    if (placement.world_size > 1) slim::comm::MpiSession::AbortJob(static_cast<int>(failure.code));
    return static_cast<int>(failure.code);
  }
  return exit_code;
}
