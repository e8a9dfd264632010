#pragma once
// Loading init weights into a model with other classes: the class outputs
// (cls_out, one row per class at each level) are built row by row from a
// ClassTransferPlan (ml.h). Internal to ml.

#include <filesystem>
#include <utility>

#include "core/core.h"
#include "ml/ml.h"
#include "ml/model.h"

namespace detops::ml {

// Loads the weights file or checkpoint (its EMA weights) at `path` into
// `net` as LoadWeightsInto does, except the class output tensors: a class
// that `plan` maps to an init class gets that class's row bit for bit, and
// every other class keeps the row `net` holds now (its fresh
// initialisation). A class output whose other dimensions differ (another
// variant) stays fresh. `plan.classes` must be `net`'s classes. Returns the
// tensors loaded and skipped; Corruption when nothing matches.
Result<std::pair<int, int>> LoadWeightsForClasses(const std::filesystem::path& path,
                                                  DetectorNet& net, const ClassTransferPlan& plan);

}  // namespace detops::ml
