// Specialises a frozen graph to its input's extents but for the batch size, as an export
// that declares every other extent fixed may: each int the graph computes from tensor
// shapes (aten::size, aten::dim, aten::len and int arithmetic on them) that comes out the
// same at two batch sizes becomes a constant, and the branches those ints decide (the
// rank checks of PyTorch's own Transformer code) are inlined. Ints that follow the batch
// size and every tensor operation stay as they are.
#pragma once

#include "export/frozen_graph.h"

namespace slim::exporting {

// Rewrites `frozen.graph` in place. `example` is one input of the model, a batch of one;
// the two batches probed repeat it. REQUIRES: every extent the graph computes follows
// the input's extents, not its values (an extent of torch.unique's or torch.nonzero's
// result that does not grow with the batch would be fixed at the example's).
void SpecialiseToInputExtents(FrozenModel& frozen, const at::Tensor& example);

}  // namespace slim::exporting
