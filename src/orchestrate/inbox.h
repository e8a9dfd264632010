#pragma once
// The data inbox: <workspace>/inbox/NAME/ is a drop folder for new labelled
// photos of dataset NAME, in any format the importer reads (YOLO, COCO,
// VOC). A batch is taken only when it is complete, so a half-copied folder
// is never imported:
//  - a completeness marker: a file named kInboxReadyMarker at the top of the
//    folder (written by the uploader last), or
//  - a quiet period: nothing in the folder (names, sizes, modification
//    times, recursively) changed for `quiet_seconds`.
// A complete batch is claimed by renaming the folder into
// inbox/.processing/NAME-<utc stamp>/ (one rename: two controllers never
// take the same batch; files copied into inbox/NAME/ after the claim start
// a new batch). When its pipeline ends, the batch moves to inbox/.done/ or
// inbox/.failed/ with a `detops-result.json` saying why.

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/core.h"

namespace detops {

inline constexpr const char* kInboxReadyMarker = "_READY";

struct InboxOptions {
  std::filesystem::path root;  // <workspace>/inbox
  double quiet_seconds = 30;   // without a marker: unchanged this long
  // Only these folders (dataset names) are watched; empty: every one.
  // Another model's controller takes the others.
  std::set<std::string> datasets;
};

// A folder's state, to tell whether it changed (names, sizes, mtimes).
struct FolderFingerprint {
  std::string digest;  // SHA-256 over the sorted entries
  int64_t files = 0;
  int64_t bytes = 0;
};
// Symlinks are not followed; folders count by name only. Errors only when
// the folder cannot be read at all (NotFound when it does not exist).
Result<FolderFingerprint> FingerprintFolder(const std::filesystem::path& folder);

struct InboxBatch {
  std::string dataset;           // NAME (the folder's name)
  std::filesystem::path folder;  // after the claim: inbox/.processing/NAME-<stamp>
  FolderFingerprint fingerprint;
  bool by_marker = false;  // complete by marker (else by quiet period)
};

// Watches the inbox. Not thread-safe: one caller (the controller's loop).
class InboxWatcher {
 public:
  explicit InboxWatcher(InboxOptions options);
  // Scans inbox/*/ (skipping dot-folders and empty ones) and claims every
  // complete batch. Folders still changing are remembered with the time of
  // their last change. `now_ms`: steady or wall milliseconds (consistent
  // across calls). A folder name that is not a valid dataset name is left
  // where it is and reported in `rejected` once (name and why).
  // A folder's quiet period starts when this watcher first sees it (and
  // again if it is taken and made anew). A folder that cannot be read or
  // claimed is reported in `rejected` once and tried again next time, so
  // that batches already claimed are always returned; errors only when the
  // inbox itself cannot be created or listed. A folder another watcher
  // renamed first is skipped silently.
  Result<std::vector<InboxBatch>> Poll(int64_t now_ms);
  // Folders the last Poll saw but did not take (waiting for quiet or the
  // marker), with seconds left of the quiet period.
  std::map<std::string, double> Pending(int64_t now_ms) const;
  // "NAME: why", appended by Poll; a name is reported again only after its
  // folder has gone and come back.
  std::vector<std::string> rejected;

 private:
  InboxOptions options_;
  struct Seen {
    std::string digest;
    int64_t changed_ms = 0;
  };
  std::map<std::string, Seen> seen_;
  std::map<std::string, bool> reported_;
};

// Moves a claimed batch to inbox/.done/ or inbox/.failed/ and writes
// detops-result.json ({"dataset", "ok", "reason", "pipeline_run", "at"})
// into it (before the move, so that it travels with the batch). Returns
// the new folder, named like `claimed`, with "-2", "-3", ... when taken.
// NotFound when `claimed` is gone; InvalidInput when it is not inside
// `inbox_root`.
Result<std::filesystem::path> SettleInboxBatch(const std::filesystem::path& inbox_root,
                                               const std::filesystem::path& claimed, bool ok,
                                               const std::string& reason, int64_t pipeline_run);

}  // namespace detops
