// gtest main for multi-rank tests, run by ctest as `mpirun -np N slim_mpi_tests`.
// Every rank runs every test; the exit code is agreed across ranks (max), so a failure on
// any rank fails the run.
#include <gtest/gtest.h>
#include <mpi.h>

#include "runtime/comm/mpi_session.h"

int main(int argc, char** argv) {
  slim::comm::MpiSession session(&argc, &argv);
  ::testing::InitGoogleTest(&argc, argv);
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  if (rank != 0) {
    // Other ranks report failures only, so the log stays readable.
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
  }
  int failed = RUN_ALL_TESTS();
  MPI_Allreduce(MPI_IN_PLACE, &failed, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  return failed;
}
