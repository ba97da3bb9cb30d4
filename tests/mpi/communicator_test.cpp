// Collectives of the MPI communicator, with expected values computed from rank and size.
#include <gtest/gtest.h>

#include <chrono>

#include "runtime/base/errors.h"
#include "runtime/comm/mpi_communicator.h"
#include "runtime/comm/mpi_session.h"
#include "runtime/comm/training_world.h"

namespace slim::comm {
namespace {

using std::chrono::milliseconds;

std::unique_ptr<Communicator> World() {
  return std::make_unique<MpiCommunicator>(MPI_COMM_WORLD, /*owned=*/false, milliseconds(30000));
}

class CommunicatorDtypeTest : public ::testing::TestWithParam<torch::ScalarType> {};

TEST_P(CommunicatorDtypeTest, AllReduceOpsMatchClosedForms) {
  auto comm = World();
  const int rank = comm->Rank();
  const int size = comm->Size();
  const auto type = GetParam();
  // Element i on rank r holds r + 1 + i.
  auto base = [&] { return (torch::arange(6, torch::kFloat64) + rank + 1).to(type); };
  const auto index = torch::arange(6, torch::kFloat64);

  auto sum = base();
  comm->AllReduceSync(sum, ReduceOp::kSum);
  EXPECT_TRUE(torch::equal(sum.to(torch::kFloat64), index * size + size * (size + 1) / 2.0));

  auto max = base();
  comm->AllReduceSync(max, ReduceOp::kMax);
  EXPECT_TRUE(torch::equal(max.to(torch::kFloat64), index + size));

  auto min = base();
  comm->AllReduceSync(min, ReduceOp::kMin);
  EXPECT_TRUE(torch::equal(min.to(torch::kFloat64), index + 1));

  auto average = (torch::ones({4}, torch::kFloat64) * 2 * (rank + 1)).to(type);
  comm->AllReduceSync(average, ReduceOp::kAverage);
  EXPECT_TRUE(torch::equal(average.to(torch::kFloat64),
                           torch::full({4}, static_cast<double>(size + 1), torch::kFloat64)));
}

TEST_P(CommunicatorDtypeTest, BroadcastAllGatherReduceScatter) {
  auto comm = World();
  const int rank = comm->Rank();
  const int size = comm->Size();
  const auto type = GetParam();

  auto message = torch::full({5}, rank * 10 + 3, torch::kFloat64).to(type);
  comm->BroadcastSync(message, size - 1);
  EXPECT_TRUE(torch::equal(message.to(torch::kFloat64),
                           torch::full({5}, (size - 1) * 10 + 3, torch::kFloat64)));

  auto mine = torch::full({3}, rank, torch::kFloat64).to(type);
  auto all = torch::empty({size * 3}, type);
  comm->AllGather(mine, all)->Wait(comm->DefaultTimeout());
  for (int r = 0; r < size; ++r) {
    EXPECT_TRUE(torch::equal(all.narrow(0, r * 3, 3).to(torch::kFloat64),
                             torch::full({3}, r, torch::kFloat64)));
  }

  // Chunk c of rank r holds r + c; the reduced chunk `rank` is sum_r (r + rank).
  auto chunks = (torch::arange(size, torch::kFloat64).repeat_interleave(2) + rank).to(type);
  auto reduced = torch::empty({2}, type);
  comm->ReduceScatter(chunks, reduced, ReduceOp::kSum)->Wait(comm->DefaultTimeout());
  const double expected = size * (size - 1) / 2.0 + size * rank;
  EXPECT_TRUE(torch::equal(reduced.to(torch::kFloat64),
                           torch::full({2}, expected, torch::kFloat64)));
  comm->Barrier()->Wait(comm->DefaultTimeout());
}

INSTANTIATE_TEST_SUITE_P(AllDtypes, CommunicatorDtypeTest,
                         ::testing::Values(torch::kFloat32, torch::kFloat64, torch::kBFloat16,
                                           torch::kFloat16, torch::kInt32, torch::kInt64,
                                           torch::kUInt8));

TEST(Communicator, ManyOperationsInFlightCompleteInOrder) {
  auto comm = World();
  std::vector<torch::Tensor> tensors;
  std::vector<WorkPtr> works;
  for (int i = 0; i < 20; ++i) {
    tensors.push_back(torch::full({1000 * (i + 1)}, static_cast<float>(comm->Rank() + i)));
    works.push_back(comm->AllReduce(tensors.back(), ReduceOp::kSum));
  }
  WaitAll(works, *comm);
  const int size = comm->Size();
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(tensors[i][0].item<float>(), size * (size - 1) / 2.0f + size * i);
  }
}

TEST(Communicator, SplitGroupsByColorAndOrdersByKey) {
  auto world = World();
  const int rank = world->Rank();
  auto parity = world->Split(rank % 2, -rank);  // reversed order inside each group
  const int members = (world->Size() + 1 - rank % 2) / 2;
  EXPECT_EQ(parity->Size(), members);
  auto value = torch::tensor({static_cast<int64_t>(rank)});
  parity->AllReduceSync(value, ReduceOp::kSum);
  int64_t expected = 0;
  for (int r = rank % 2; r < world->Size(); r += 2) expected += r;
  EXPECT_EQ(value.item<int64_t>(), expected);
  // Highest world rank gets group rank 0.
  auto top = torch::tensor({static_cast<int64_t>(rank)});
  parity->BroadcastSync(top, 0);
  EXPECT_EQ(top.item<int64_t>(), (world->Size() - 1 - rank % 2) / 2 * 2 + rank % 2);

  auto node = world->SplitNodeLocal();
  EXPECT_EQ(node->Size(), world->Size());  // tests run on one machine
}

TEST(Communicator, WaitPastTheDeadlineNamesOperationAndRank) {
  auto world = World();
  auto group = world->Split(0, world->Rank());
  if (world->Size() < 2) GTEST_SKIP() << "needs two ranks";
  auto tensor = torch::ones({8});
  WorkPtr pending;
  if (world->Rank() == 0) {
    pending = group->AllReduce(tensor, ReduceOp::kSum);
    try {
      pending->Wait(milliseconds(200));
      ADD_FAILURE() << "allreduce completed although rank 1 never joined";
    } catch (const CommError& e) {
      const std::string message = e.what();
      EXPECT_NE(message.find("allreduce(sum) of 8 Float elements"), std::string::npos) << message;
      EXPECT_NE(message.find("on rank 0"), std::string::npos) << message;
      EXPECT_NE(message.find("did not complete within 0.2 s"), std::string::npos) << message;
    }
  }
  world->Barrier()->Wait(world->DefaultTimeout());
  // Now the others join, so the operation completes and the group can be freed.
  if (world->Rank() != 0) pending = group->AllReduce(tensor, ReduceOp::kSum);
  pending->Wait(world->DefaultTimeout());
  EXPECT_EQ(tensor[0].item<float>(), world->Size());
}

TEST(Communicator, RejectsTensorsMpiCannotTake) {
  auto comm = World();
  EXPECT_THROW(comm->AllReduce(torch::ones({2}, torch::kInt16), ReduceOp::kSum), CommError);
  EXPECT_THROW(comm->AllReduce(torch::ones({4, 4}).t(), ReduceOp::kSum), CommError);
  EXPECT_THROW(comm->Broadcast(torch::ones({2}), comm->Size()), CommError);
}

TEST(AgreedBlocker, EveryRankGetsTheMostBasicBlockerOfAny) {
  auto comm = World();
  // Only the last rank lacks a GPU: every rank must fall back alike.
  const auto mine = comm->Rank() == comm->Size() - 1 ? CudaBlocker::kNoDevice : CudaBlocker::kNone;
  EXPECT_EQ(AgreedBlocker(mine, *comm), CudaBlocker::kNoDevice);
  EXPECT_EQ(AgreedBlocker(CudaBlocker::kNone, *comm), CudaBlocker::kNone);
}

}  // namespace
}  // namespace slim::comm
