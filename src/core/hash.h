#pragma once
// SHA-256 content addresses. Thread-compatible: one Sha256 per thread.

#include <cstddef>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "core/status.h"

namespace detops {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void Update(const void* data, size_t size);
  void Update(std::string_view s) { Update(s.data(), s.size()); }
  // Lower-case hex digest (64 chars). The object may not be updated after.
  std::string HexDigest();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Hex SHA-256 of a byte string.
std::string Sha256Hex(std::string_view bytes);
// Hex SHA-256 of a file's contents, read in chunks.
Result<std::string> Sha256File(const std::filesystem::path& path);
// True for a 64-char lower-case hex string.
bool IsSha256Hex(std::string_view s);

}  // namespace detops
