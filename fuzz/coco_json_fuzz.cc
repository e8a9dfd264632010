// COCO instances JSON: the input is annotations/instances_train.json of a
// folder that also holds images/train/a.jpg and images/b.png, read by
// ReadCoco as `detops data import --format coco` does.

#include "data/source.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const detops::fuzz::ScratchDir dir;
  static const bool laid_out = [] {
    dir.Write("images/train/a.jpg", "not decoded by the reader");
    dir.Write("images/b.png", "not decoded by the reader");
    return true;
  }();
  (void)laid_out;
  dir.Write("annotations/instances_train.json", detops::fuzz::AsText(data, size));
  detops::fuzz::TrapUnlessBoxesNameClasses(detops::ReadCoco(dir.path()));
  return 0;
}
