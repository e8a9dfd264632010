// Pascal VOC XML: the input is Annotations/a.xml of a folder with
// JPEGImages/a.jpg and ImageSets/Main/train.txt, read by ReadVoc as
// `detops data import --format voc` does.

#include "data/source.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const detops::fuzz::ScratchDir dir;
  static const bool laid_out = [] {
    dir.Write("JPEGImages/a.jpg", "not decoded by the reader");
    dir.Write("JPEGImages/b.jpg", "not decoded by the reader");
    dir.Write("ImageSets/Main/train.txt", "a\nb 1\n");
    return true;
  }();
  (void)laid_out;
  dir.Write("Annotations/a.xml", detops::fuzz::AsText(data, size));
  detops::fuzz::TrapUnlessBoxesNameClasses(detops::ReadVoc(dir.path()));
  return 0;
}
