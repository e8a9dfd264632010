// YOLO label files: the input is one image's labels/<split>/<name>.txt, read
// by ReadYolo from a folder laid out as images/train + labels/train, as
// `detops data import` does with a user's dataset.

#include "data/source.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const detops::fuzz::ScratchDir dir;
  static const bool laid_out = [] {
    dir.Write("images/train/a.jpg", "not decoded by the reader");
    return true;
  }();
  (void)laid_out;
  dir.Write("labels/train/a.txt", detops::fuzz::AsText(data, size));
  auto set = detops::ReadYolo(dir.path());
  if (set.ok()) {
    for (const auto& img : set->images) {
      for (const auto& b : img.boxes) {
        if (b.class_id < 0) __builtin_trap();  // ids are checked non-negative
      }
    }
  }
  return 0;
}
