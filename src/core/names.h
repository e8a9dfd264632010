#pragma once
// The one rule for the names users give to datasets and models: 1 to 64
// characters, letters, digits, '.', '_' and '-', starting with a letter or a
// digit. One rule, because a model is named after its dataset by default and
// both travel in URLs (/v1/models/{name}/...).

#include <string_view>

#include "core/status.h"

namespace detops {

// The rule as an ECMAScript/std::regex pattern, for routes that capture a name.
inline constexpr std::string_view kNamePattern = "[A-Za-z0-9][A-Za-z0-9._-]{0,63}";

// Ok, or InvalidInput naming `what` ("dataset", "model"), the name and the rule.
Status CheckName(std::string_view what, std::string_view name);

}  // namespace detops
