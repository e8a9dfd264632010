// YOLO data.yaml: the class names and split entries as ParseDataYaml reads
// them (ReadYolo then resolves the paths on disk, which is not parsing).

#include "data/source.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto doc = detops::ParseDataYaml(detops::fuzz::AsText(data, size), "data.yaml");
  (void)doc;
  return 0;
}
