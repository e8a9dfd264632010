// Training recipes: the YAML file of `detops train --config FILE`, read by
// LoadTrainConfig over the default options.

#include "fuzz_util.h"
#include "pipeline/pipeline.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const detops::fuzz::ScratchDir dir;
  dir.Write("recipe.yaml", detops::fuzz::AsText(data, size));
  auto o = detops::LoadTrainConfig(dir.path() / "recipe.yaml", detops::TrainOptions{});
  (void)o;
  return 0;
}
