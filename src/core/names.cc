#include "core/names.h"

#include <string>

namespace detops {
namespace {

bool IsAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

}  // namespace

Status CheckName(std::string_view what, std::string_view name) {
  bool ok = !name.empty() && name.size() <= 64 && IsAlnum(name[0]);
  for (char c : name) ok = ok && (IsAlnum(c) || c == '.' || c == '_' || c == '-');
  if (ok) return Status::Ok();
  return Status::InvalidInput(std::string(what) + " name '" + std::string(name) +
                              "': expected a letter or digit, then letters, digits, '.', '_' or "
                              "'-' (1 to 64 characters)");
}

}  // namespace detops
