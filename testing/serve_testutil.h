#pragma once
// Fixtures for end-to-end tests of `detops serve`: its command line, the
// port it reports, and the photos and feedback the tests send it. Apart
// from testutil.h because they need OpenCV.

#include <filesystem>
#include <string>
#include <vector>

#include "core/core.h"
#include "testing/testutil.h"

namespace detops::testing {

// `detops --workspace WORKSPACE serve --model MODEL` on a free loopback
// port, following the registry every 100 ms, its monitor reading
// `monitor_policy` every second and sampling every request; then `extra`.
std::vector<std::string> MonitoredServeArgv(const std::string& workspace, const std::string& model,
                                            const std::filesystem::path& monitor_policy,
                                            const std::vector<std::string>& extra = {});

// Waits up to `timeout_s` for `server` to print "ready on
// http://127.0.0.1:PORT": PORT, or 0 when it exits or the time runs out
// first (its Output() says why).
int WaitForServePort(ChildProcess& server, double timeout_s = 60);

// The first API token ("dtk_...") in `text`, as `detops tokens create`
// prints it; "" when there is none.
std::string TokenIn(const std::string& text);

// `jpeg` (a JPEG file's bytes) with its brightness times `factor` (0.4:
// darker), encoded again as a JPEG.
std::string Dimmed(const std::string& jpeg, double factor);

// The YOLO label of a photo `detops synth` wrote (DIR/images/SPLIT/NAME.jpg,
// its label DIR/labels/SPLIT/NAME.txt) as /v1/feedback boxes in pixels of
// a `width` x `height` image, each class id named by `classes`.
Json TrueBoxes(const std::filesystem::path& photo, const Json& classes, int width, int height);

}  // namespace detops::testing
