#pragma once
// TrainOptions <-> JSON, so that a run records its recipe and a resume
// rebuilds it exactly. Internal to pipeline.

#include "core/core.h"
#include "ml/ml.h"

namespace detops {

Json TrainOptionsToJson(const TrainOptions& o);
Result<TrainOptions> TrainOptionsFromJson(const Json& j);
// Flat string params for the tracker ("epochs" -> "50", "augment.mosaic" -> "0.5").
std::map<std::string, std::string> TrainOptionsToParams(const TrainOptions& o);

}  // namespace detops
