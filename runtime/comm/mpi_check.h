// SLIM_MPI_CHECK: checks the return code of a raw MPI call and throws CommError with the
// call, file:line, the world rank and MPI's own error text. Communicators using it must
// set MPI_ERRORS_RETURN on their MPI_Comm so that errors come back as codes.
#pragma once

#include <string>

namespace slim::comm {

// Throws CommError("<what> failed at <file>:<line> on rank <r>: <MPI error string>").
[[noreturn]] void ThrowMpiError(int code, const char* what, const char* file, int line);

}  // namespace slim::comm

#define SLIM_MPI_CHECK(call)                                                \
  do {                                                                      \
    int slim_mpi_rc_ = (call);                                              \
    if (slim_mpi_rc_ != MPI_SUCCESS) {                                      \
      ::slim::comm::ThrowMpiError(slim_mpi_rc_, #call, __FILE__, __LINE__); \
    }                                                                       \
  } while (0)
