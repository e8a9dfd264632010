#pragma once
// Small file helpers. Every write that others may read goes through
// WriteFileAtomic: write to a temp file beside the target, fsync, rename.

#include <filesystem>
#include <string>
#include <string_view>

#include "core/status.h"

namespace detops {

// Reads a whole file. Errors name the path and the reason.
Result<std::string> ReadFile(const std::filesystem::path& path);
// Writes `bytes` to `path` atomically (temp + fsync + rename). Creates parents.
Status WriteFileAtomic(const std::filesystem::path& path, std::string_view bytes);
// Lower-cased extension with the dot (".jpg"), "" if none.
std::string LowerExtension(const std::filesystem::path& path);
// True for the image extensions detops reads (jpg, jpeg, png, bmp, webp, tif,
// tiff), case-insensitive.
bool IsImageExtension(const std::filesystem::path& path);
// True when `path`, after resolving symlinks, lies inside `root`.
bool IsInside(const std::filesystem::path& root, const std::filesystem::path& path);

}  // namespace detops
