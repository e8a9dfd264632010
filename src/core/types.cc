#include "core/types.h"

#include <cmath>

namespace detops {

const char* SplitName(Split s) {
  switch (s) {
    case Split::kTrain:
      return "train";
    case Split::kVal:
      return "val";
    case Split::kTest:
      return "test";
  }
  return "train";
}

std::optional<Split> ParseSplit(std::string_view s) {
  if (s == "train") return Split::kTrain;
  if (s == "val" || s == "valid" || s == "validation") return Split::kVal;
  if (s == "test") return Split::kTest;
  return std::nullopt;
}

double Quantize(double v) { return std::round(v * 1e6) / 1e6; }

Box QuantizeBox(Box b) {
  b.x1 = Quantize(b.x1);
  b.y1 = Quantize(b.y1);
  b.x2 = Quantize(b.x2);
  b.y2 = Quantize(b.y2);
  return b;
}

}  // namespace detops
