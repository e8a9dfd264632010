#pragma once
// JSON (nlohmann) and the conversions of core types. Parse errors become
// Status values naming the source and the byte offset.

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "core/status.h"
#include "core/types.h"

namespace detops {

using Json = nlohmann::json;
using OrderedJson = nlohmann::ordered_json;

// Parses JSON text; `what` names the source in the error ("data.json").
Result<Json> ParseJson(std::string_view text, const std::string& what);

Json ManifestToJson(const Manifest& m);
Result<Manifest> ManifestFromJson(const Json& j);
// Sorts images into canonical order and quantizes boxes.
void Canonicalize(Manifest& m);
// Canonical serialization (sorted, compact) and its SHA-256: the version id.
std::string CanonicalManifestText(const Manifest& m);

Json IssuesToJson(const std::vector<SourceIssue>& issues);
std::vector<SourceIssue> IssuesFromJson(const Json& j);

}  // namespace detops
