// Precompiled header for every SlimTrain translation unit that touches LibTorch.
// Only heavy, stable third-party headers belong here; project headers never do.
#pragma once

#include <torch/script.h>
#include <torch/torch.h>
#include <yaml-cpp/yaml.h>
