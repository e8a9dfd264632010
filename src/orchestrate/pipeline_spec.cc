// Reads a pipeline file in two passes: the keys of each step first (so that
// a reference may name a step further down), then the references and needs,
// then a stable topological sort that names a cycle when there is one.

#include "orchestrate/pipeline_spec.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <functional>
#include <set>
#include <system_error>

#include "core/names.h"

namespace detops {
namespace {

// ---- references: ${params.NAME}, ${steps.ID.outputs.NAME}, $${ ----

struct Ref {
  std::string text;  // as written, "${params.x}"
  bool is_param = false;
  std::string name;    // the parameter, or the step id
  std::string output;  // steps only
};

bool IsNameChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
}

bool IsName(std::string_view s) {
  return !s.empty() && s.size() <= 64 && std::all_of(s.begin(), s.end(), IsNameChar);
}

bool IsStepId(std::string_view s) {
  return !s.empty() && s.size() <= 64 && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
}

std::vector<std::string_view> Split(std::string_view s, char sep) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  for (size_t i = 0; i <= s.size(); ++i) {
    if (i == s.size() || s[i] == sep) {
      parts.push_back(s.substr(start, i - start));
      start = i + 1;
    }
  }
  return parts;
}

const char kRefForms[] =
    "(a reference is ${params.NAME} or ${steps.ID.outputs.NAME}; $${ is a literal ${)";

// Walks `text` left to right, handing literal pieces to `literal` and
// references to `ref`. The error (no location) names the piece at fault.
Status Scan(std::string_view text, const std::function<void(std::string_view)>& literal,
            const std::function<Status(const Ref&)>& ref) {
  size_t i = 0;
  while (i < text.size()) {
    const size_t dollar = text.find('$', i);
    if (dollar == std::string_view::npos) {
      literal(text.substr(i));
      break;
    }
    literal(text.substr(i, dollar - i));
    if (text.substr(dollar, 3) == "$${") {
      literal("${");
      i = dollar + 3;
      continue;
    }
    if (text.substr(dollar, 2) != "${") {
      literal("$");
      i = dollar + 1;
      continue;
    }
    const size_t close = text.find('}', dollar + 2);
    if (close == std::string_view::npos) {
      std::string_view rest = text.substr(dollar, 40);
      return Status::InvalidInput("'" + std::string(rest) + "' has no closing '}' " + kRefForms);
    }
    Ref r;
    r.text = std::string(text.substr(dollar, close + 1 - dollar));
    const std::vector<std::string_view> parts =
        Split(text.substr(dollar + 2, close - dollar - 2), '.');
    if (parts.size() == 2 && parts[0] == "params" && IsName(parts[1])) {
      r.is_param = true;
      r.name = std::string(parts[1]);
    } else if (parts.size() == 4 && parts[0] == "steps" && IsStepId(parts[1]) &&
               parts[2] == "outputs" && IsName(parts[3])) {
      r.name = std::string(parts[1]);
      r.output = std::string(parts[3]);
    } else {
      return Status::InvalidInput("'" + r.text + "' is not a reference " + kRefForms);
    }
    RETURN_IF_ERROR(ref(r));
    i = close + 1;
  }
  return Status::Ok();
}

std::string Join(const std::vector<std::string>& items, const std::string& sep = ", ") {
  std::string s;
  for (const std::string& item : items) s += (s.empty() ? "" : sep) + item;
  return s;
}

template <typename Map>
std::string KeysOf(const Map& m) {
  std::vector<std::string> keys;
  for (const auto& [k, _] : m) keys.push_back(k);
  return keys.empty() ? "none" : Join(keys);
}

// ---- the YAML reader ----

// Aliases let a small file name the same text many times; what the spec
// copies out of the document is capped so that they cannot blow it up.
constexpr size_t kMaxCopiedBytes = 4 * kMaxPipelineBytes;

class Reader {
 public:
  explicit Reader(const std::string& source) : source_(source) {}

  Status Error(const YAML::Mark& mark, const std::string& what) const {
    return Status::InvalidInput(source_ + ":" + std::to_string(std::max(mark.line, 0) + 1) + ": " +
                                what);
  }
  Status Error(const YAML::Node& n, const std::string& what) const { return Error(n.Mark(), what); }
  // About a value: a null value has no text, so its line is its key's.
  Status ValueError(const YAML::Node& key, const YAML::Node& v, const std::string& what) const {
    return Error(v.IsNull() ? key.Mark() : v.Mark(), what);
  }

  // The keys of a mapping in order, each checked to be a name-like scalar,
  // once, and one of `allowed` (empty: any).
  Result<std::vector<std::pair<YAML::Node, YAML::Node>>> Entries(
      const YAML::Node& map, const std::string& what,
      const std::vector<std::string>& allowed = {}) const {
    std::vector<std::pair<YAML::Node, YAML::Node>> entries;
    std::map<std::string, int> seen;  // key -> line
    for (const auto& kv : map) {
      if (!kv.first.IsScalar()) return Error(kv.first, what + ": keys must be names");
      const std::string key = kv.first.Scalar();
      if (!allowed.empty() && std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
        return Error(kv.first,
                     what + ": unknown key '" + key + "' (allowed: " + Join(allowed) + ")");
      }
      if (auto it = seen.find(key); it != seen.end()) {
        return Error(kv.first, what + ": duplicate key '" + key + "' (first at line " +
                                   std::to_string(it->second) + ")");
      }
      seen[key] = kv.first.Mark().line + 1;
      RETURN_IF_ERROR(Copied(kv.first, key.size()));
      entries.emplace_back(kv.first, kv.second);
    }
    return entries;
  }

  // A single value's text: strings, numbers and booleans as written.
  Result<std::string> Scalar(const YAML::Node& key, const YAML::Node& v,
                             const std::string& what) const {
    if (v.IsNull()) return ValueError(key, v, what + ": expected a value, got nothing");
    if (!v.IsScalar()) {
      return Error(v, what + ": expected a single value, got a " +
                          std::string(v.IsMap() ? "mapping" : "list"));
    }
    RETURN_IF_ERROR(Copied(v, v.Scalar().size()));
    return v.Scalar();
  }

  Result<int> Int(const YAML::Node& key, const YAML::Node& v, const std::string& what, int min,
                  int max) const {
    ASSIGN_OR_RETURN(std::string text, Scalar(key, v, what));
    long long n = 0;
    try {
      size_t used = 0;
      n = std::stoll(text, &used);
      if (used != text.size()) throw std::exception();
    } catch (const std::exception&) {
      return Error(v, what + ": expected an integer, got '" + text + "'");
    }
    if (n < min || n > max) {
      return Error(v, what + " must lie in " + std::to_string(min) + ".." + std::to_string(max) +
                          ", got " + text);
    }
    return static_cast<int>(n);
  }

  Result<double> Seconds(const YAML::Node& key, const YAML::Node& v,
                         const std::string& what) const {
    ASSIGN_OR_RETURN(std::string text, Scalar(key, v, what));
    double d = 0;
    try {
      size_t used = 0;
      d = std::stod(text, &used);
      if (used != text.size() || !std::isfinite(d)) throw std::exception();
    } catch (const std::exception&) {
      return Error(v, what + ": expected a number of seconds, got '" + text + "'");
    }
    if (d < 0) return Error(v, what + " must not be negative, got " + text);
    return d;
  }

  Result<bool> Bool(const YAML::Node& key, const YAML::Node& v, const std::string& what) const {
    bool b = false;
    if (!v.IsScalar() || !YAML::convert<bool>::decode(v, b)) {
      return ValueError(key, v, what + ": expected true or false");
    }
    return b;
  }

  Status Copied(const YAML::Node& n, size_t bytes) const {
    copied_ += bytes;
    if (copied_ > kMaxCopiedBytes) {
      return Error(n, "the pipeline expands to more than " + std::to_string(kMaxCopiedBytes >> 20) +
                          " MiB of text (aliases repeating large parts?)");
    }
    return Status::Ok();
  }

 private:
  const std::string& source_;
  mutable size_t copied_ = 0;
};

// A step as read, before its needs are resolved.
struct RawStep {
  StepSpec spec;
  std::vector<std::pair<std::string, YAML::Node>> needs;  // explicit, with where it was written
  // Each text to scan for references: (what, text, node).
  std::vector<std::tuple<std::string, std::string, YAML::Node>> texts;
  std::map<std::string, std::string> why;  // needed id -> "" (explicit) or the reference
};

const std::vector<std::string> kTopKeys = {"name", "description", "params", "steps"};
const std::vector<std::string> kStepKeys = {"id", "uses",    "needs",           "with",
                                            "if", "retries", "backoff_seconds", "cache"};

Status ReadParams(const Reader& r, const YAML::Node& key, const YAML::Node& node,
                  PipelineSpec& spec) {
  if (node.IsNull()) return Status::Ok();
  if (!node.IsMap()) {
    return r.ValueError(key, node, "params must be a mapping of name: default (null: required)");
  }
  ASSIGN_OR_RETURN(auto entries, r.Entries(node, "params"));
  for (const auto& [k, v] : entries) {
    const std::string name = k.Scalar();
    if (!IsName(name)) {
      return r.Error(k, "parameter name '" + name +
                            "': expected letters, digits, '_' or '-' (1 to 64 characters)");
    }
    if (v.IsNull()) {
      spec.params[name] = std::nullopt;
      continue;
    }
    ASSIGN_OR_RETURN(std::string value, r.Scalar(k, v, "params." + name));
    spec.params[name] = value;
  }
  return Status::Ok();
}

Result<RawStep> ReadStep(const Reader& r, const YAML::Node& node, size_t index) {
  const std::string at = "steps[" + std::to_string(index) + "]";
  if (!node.IsMap()) return r.Error(node, at + ": a step must be a mapping with id and uses");
  RawStep raw;
  StepSpec& s = raw.spec;
  s.line = node.Mark().line + 1;
  for (const auto& kv : node) {  // the id first: the other errors name the step by it
    if (!kv.first.IsScalar() || kv.first.Scalar() != "id") continue;
    ASSIGN_OR_RETURN(s.id, r.Scalar(kv.first, kv.second, at + ".id"));
    if (!IsStepId(s.id)) {
      return r.Error(kv.second, "step id '" + s.id +
                                    "': expected lower-case letters, digits, '_' or '-' (1 to "
                                    "64 characters)");
    }
    break;
  }
  if (s.id.empty()) return r.Error(node, at + ": a step needs an id");
  const std::string step = "step " + s.id;
  ASSIGN_OR_RETURN(auto entries, r.Entries(node, step, kStepKeys));
  bool has_uses = false;
  for (const auto& [k, v] : entries) {
    const std::string key = k.Scalar();
    if (key == "uses") {
      ASSIGN_OR_RETURN(s.uses, r.Scalar(k, v, step + ": uses"));
      const auto& types = StepTypes();
      if (std::find(types.begin(), types.end(), s.uses) == types.end()) {
        return r.Error(v,
                       step + ": unknown step type '" + s.uses + "' (known: " + Join(types) + ")");
      }
      has_uses = true;
    } else if (key == "needs") {
      if (v.IsSequence()) {
        for (const auto& item : v) {
          ASSIGN_OR_RETURN(std::string id, r.Scalar(k, item, step + ": needs"));
          raw.needs.emplace_back(id, item);
        }
      } else {
        ASSIGN_OR_RETURN(std::string id, r.Scalar(k, v, step + ": needs (a step id or a list)"));
        raw.needs.emplace_back(id, v);
      }
    } else if (key == "with") {
      if (v.IsNull()) continue;
      if (!v.IsMap()) return r.ValueError(k, v, step + ": with must be a mapping of name: value");
      ASSIGN_OR_RETURN(auto with, r.Entries(v, step + ": with"));
      for (const auto& [wk, wv] : with) {
        const std::string what = step + ", with." + wk.Scalar();
        ASSIGN_OR_RETURN(std::string value, r.Scalar(wk, wv, what));
        raw.texts.emplace_back(what, value, wv);
        s.with[wk.Scalar()] = std::move(value);
      }
    } else if (key == "if") {
      ASSIGN_OR_RETURN(s.if_expr, r.Scalar(k, v, step + ": if"));
      if (s.if_expr.empty()) {
        return r.Error(v, step + ": if is empty (leave it out for a step that always runs)");
      }
      raw.texts.emplace_back(step + ", if", s.if_expr, v);
    } else if (key == "retries") {
      ASSIGN_OR_RETURN(s.retries, r.Int(k, v, step + ": retries", 0, 10));
    } else if (key == "backoff_seconds") {
      ASSIGN_OR_RETURN(s.backoff_seconds, r.Seconds(k, v, step + ": backoff_seconds"));
    } else if (key == "cache") {
      ASSIGN_OR_RETURN(s.cache, r.Bool(k, v, step + ": cache"));
    }
  }
  if (!has_uses) {
    return r.Error(node, step + ": a step needs uses: one of " + Join(StepTypes()));
  }
  return raw;
}

// Checks each step's needs and references against the others and records
// the needs they imply.
Status ResolveNeeds(const Reader& r, const PipelineSpec& spec, std::vector<RawStep>& steps,
                    const std::map<std::string, size_t>& index) {
  std::vector<std::string> ids;
  for (const RawStep& s : steps) ids.push_back(s.spec.id);
  const std::string known_steps = " (steps: " + Join(ids) + ")";
  for (RawStep& s : steps) {
    const std::string step = "step " + s.spec.id;
    for (const auto& [id, node] : s.needs) {
      if (!index.count(id))
        return r.Error(node, step + ": needs unknown step '" + id + "'" + known_steps);
      s.why[id] = "";
    }
    for (const auto& [what, text, node] : s.texts) {
      const int line = node.Mark().line + 1;
      Status st = Scan(
          text, [](std::string_view) {},
          [&](const Ref& ref) -> Status {
            if (ref.is_param) {
              if (spec.params.count(ref.name)) return Status::Ok();
              return Status::InvalidInput("unknown parameter '" + ref.name + "' in " + ref.text +
                                          " (declared: " + KeysOf(spec.params) + ")");
            }
            if (!index.count(ref.name)) {
              return Status::InvalidInput("unknown step '" + ref.name + "' in " + ref.text +
                                          known_steps);
            }
            s.why.emplace(ref.name, ref.text + " at line " + std::to_string(line));
            return Status::Ok();
          });
      if (!st.ok()) return r.Error(node, what + ": " + st.message());
    }
    for (const auto& [id, _] : s.why) s.spec.needs.push_back(id);  // sorted, unique: a map's keys
  }
  return Status::Ok();
}

// Kahn's algorithm taking the ready step that comes first in the file; what
// is left over contains a cycle, found by following needs until one repeats.
Status SortSteps(const Reader& r, std::vector<RawStep>& steps,
                 const std::map<std::string, size_t>& index) {
  const size_t n = steps.size();
  std::vector<size_t> waiting(n, 0);
  std::vector<std::vector<size_t>> dependents(n);
  for (size_t i = 0; i < n; ++i) {
    for (const std::string& id : steps[i].spec.needs) {
      dependents[index.at(id)].push_back(i);
      ++waiting[i];
    }
  }
  std::set<size_t> ready;
  for (size_t i = 0; i < n; ++i) {
    if (waiting[i] == 0) ready.insert(i);
  }
  std::vector<size_t> order;
  while (!ready.empty()) {
    const size_t i = *ready.begin();
    ready.erase(ready.begin());
    order.push_back(i);
    for (size_t d : dependents[i]) {
      if (--waiting[d] == 0) ready.insert(d);
    }
  }
  if (order.size() < n) {
    // Every step left waits on another step left: walk needs to a repeat.
    size_t start = 0;
    while (waiting[start] == 0) ++start;
    std::vector<size_t> path;
    std::vector<int> pos(n, -1);
    size_t at = start;
    while (pos[at] < 0) {
      pos[at] = static_cast<int>(path.size());
      path.push_back(at);
      for (const std::string& id : steps[at].spec.needs) {
        if (waiting[index.at(id)] > 0) {
          at = index.at(id);
          break;
        }
      }
    }
    std::vector<size_t> cycle(path.begin() + pos[at], path.end());
    std::rotate(cycle.begin(), std::min_element(cycle.begin(), cycle.end()), cycle.end());
    std::vector<std::string> names;
    std::vector<std::string> implied;
    for (size_t k = 0; k < cycle.size(); ++k) {
      const RawStep& from = steps[cycle[k]];
      const std::string& to = steps[cycle[(k + 1) % cycle.size()]].spec.id;
      names.push_back(from.spec.id);
      const std::string& why = from.why.at(to);
      if (!why.empty()) implied.push_back(from.spec.id + " refers to " + why);
    }
    names.push_back(names.front());
    if (names.size() > 20) {  // a long cycle keeps its ends
      const size_t left_out = names.size() - 15;
      names.erase(names.begin() + 10, names.end() - 5);
      names.insert(names.begin() + 10, "(" + std::to_string(left_out) + " more)");
    }
    if (implied.size() > 5) implied.resize(5);
    std::string msg = "cycle: " + Join(names, " -> ") + " (each step needs the next)";
    if (!implied.empty()) {
      msg += "; a reference makes a step need the one it names: " + Join(implied, "; ");
    }
    YAML::Mark mark;
    mark.line = steps[cycle.front()].spec.line - 1;
    return r.Error(mark, msg);
  }
  std::vector<RawStep> sorted;
  sorted.reserve(n);
  for (size_t i : order) sorted.push_back(std::move(steps[i]));
  steps = std::move(sorted);
  return Status::Ok();
}

Status ReadPipeline(const Reader& r, const YAML::Node& root, PipelineSpec& spec) {
  if (!root.IsMap()) return r.Error(root, "a pipeline must be a mapping with name and steps");
  ASSIGN_OR_RETURN(auto entries, r.Entries(root, "pipeline", kTopKeys));
  std::map<std::string, std::pair<YAML::Node, YAML::Node>> top;
  // emplace, not operator=: assigning to a YAML::Node rebinds the node it refers to.
  for (const auto& [k, v] : entries) top.emplace(k.Scalar(), std::make_pair(k, v));

  if (!top.count("name")) return r.Error(root, "a pipeline needs a name");
  const auto& [name_key, name] = top.at("name");
  ASSIGN_OR_RETURN(spec.name, r.Scalar(name_key, name, "name"));
  if (Status st = CheckName("pipeline", spec.name); !st.ok()) return r.Error(name, st.message());
  if (top.count("description")) {
    const auto& [k, v] = top.at("description");
    if (!v.IsNull()) {
      ASSIGN_OR_RETURN(spec.description, r.Scalar(k, v, "description"));
    }
  }
  if (top.count("params")) {
    const auto& [k, v] = top.at("params");
    RETURN_IF_ERROR(ReadParams(r, k, v, spec));
  }

  if (!top.count("steps")) return r.Error(root, "a pipeline needs steps");
  const auto& [steps_key, steps_node] = top.at("steps");
  if (!steps_node.IsSequence() || steps_node.size() == 0) {
    return r.ValueError(steps_key, steps_node, "steps must be a non-empty list of steps");
  }
  std::vector<RawStep> steps;
  std::map<std::string, size_t> index;  // id -> position in the file
  for (const auto& node : steps_node) {
    ASSIGN_OR_RETURN(RawStep s, ReadStep(r, node, steps.size()));
    auto [it, fresh] = index.emplace(s.spec.id, steps.size());
    if (!fresh) {
      return r.Error(node, "duplicate step id '" + s.spec.id + "' (first at line " +
                               std::to_string(steps[it->second].spec.line) + ")");
    }
    steps.push_back(std::move(s));
  }
  RETURN_IF_ERROR(ResolveNeeds(r, spec, steps, index));
  RETURN_IF_ERROR(SortSteps(r, steps, index));
  for (RawStep& s : steps) spec.steps.push_back(std::move(s.spec));
  return Status::Ok();
}

std::string OutputText(const Json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_null()) return "";
  return v.dump();
}

}  // namespace

const std::vector<std::string>& StepTypes() {
  static const std::vector<std::string> types = {
      "import", "validate", "feedback-export", "train", "evaluate", "register", "promote", "shell"};
  return types;
}

Result<PipelineSpec> ParsePipelineSpec(const std::string& yaml_text,
                                       const std::string& file_label) {
  if (yaml_text.size() > kMaxPipelineBytes) {
    return Status::InvalidInput(file_label + ": " + std::to_string(yaml_text.size()) +
                                " bytes; a pipeline file may have at most " +
                                std::to_string(kMaxPipelineBytes >> 20) + " MiB");
  }
  const Reader r(file_label);
  PipelineSpec spec;
  try {
    const YAML::Node root = YAML::Load(yaml_text);
    if (root.IsNull()) return r.Error(root, "the pipeline is empty (it needs a name and steps)");
    RETURN_IF_ERROR(ReadPipeline(r, root, spec));
  } catch (const YAML::Exception& e) {
    return r.Error(e.mark, "not valid YAML: " + e.msg);
  }
  return spec;
}

Result<PipelineSpec> LoadPipelineSpec(const std::filesystem::path& file) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(file, ec);
  if (ec) {
    if (!std::filesystem::exists(file)) {
      return Status::NotFound("pipeline file " + file.string() + ": no such file");
    }
    return Status::IOError("pipeline file " + file.string() + ": " + ec.message());
  }
  if (size > kMaxPipelineBytes) {  // before reading it
    return Status::InvalidInput(file.string() + ": " + std::to_string(size) +
                                " bytes; a pipeline file may have at most " +
                                std::to_string(kMaxPipelineBytes >> 20) + " MiB");
  }
  ASSIGN_OR_RETURN(std::string text, ReadFile(file));
  ASSIGN_OR_RETURN(PipelineSpec spec, ParsePipelineSpec(text, file.string()));
  spec.path = file.string();
  return spec;
}

Result<std::map<std::string, std::string>> ResolveParams(
    const PipelineSpec& spec, const std::map<std::string, std::string>& overrides) {
  const std::string pipeline = "pipeline " + spec.name + ": ";
  for (const auto& [name, _] : overrides) {
    if (!spec.params.count(name)) {
      return Status::InvalidInput(pipeline + "unknown parameter '" + name +
                                  "' (declared: " + KeysOf(spec.params) + ")");
    }
  }
  std::map<std::string, std::string> values;
  std::vector<std::string> missing;
  for (const auto& [name, default_value] : spec.params) {
    if (auto it = overrides.find(name); it != overrides.end()) {
      values[name] = it->second;
    } else if (default_value) {
      values[name] = *default_value;
    } else {
      missing.push_back(name);
    }
  }
  if (!missing.empty()) {
    return Status::InvalidInput(pipeline + "parameter" + (missing.size() > 1 ? "s " : " ") +
                                Join(missing) + (missing.size() > 1 ? " are" : " is") +
                                " required and given no value (pass -p NAME=VALUE)");
  }
  return values;
}

Result<std::string> Expand(const std::string& text,
                           const std::map<std::string, std::string>& params,
                           const std::map<std::string, Json>& outputs, const std::string& where) {
  std::string out;
  Status st = Scan(
      text, [&](std::string_view piece) { out += piece; },
      [&](const Ref& ref) -> Status {
        if (ref.is_param) {
          auto it = params.find(ref.name);
          if (it == params.end()) {
            return Status::InvalidInput("unknown parameter '" + ref.name + "' in " + ref.text +
                                        " (given: " + KeysOf(params) + ")");
          }
          out += it->second;
          return Status::Ok();
        }
        auto it = outputs.find(ref.name);
        if (it == outputs.end()) {
          return Status::InvalidInput("step " + ref.name + " has no outputs (it has not run) for " +
                                      ref.text);
        }
        const Json& produced = it->second;
        if (!produced.is_object() || !produced.contains(ref.output)) {
          std::vector<std::string> names;
          if (produced.is_object()) {
            for (const auto& [k, _] : produced.items()) names.push_back(k);
          }
          return Status::InvalidInput(
              "step " + ref.name + " has no output '" + ref.output + "' for " + ref.text +
              " (its outputs: " + (names.empty() ? "none" : Join(names)) + ")");
        }
        out += OutputText(produced.at(ref.output));
        return Status::Ok();
      });
  if (!st.ok()) return Status::InvalidInput(where + ": " + st.message());
  return out;
}

bool Truthy(const std::string& value) {
  const auto space = [](char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; };
  auto begin = std::find_if_not(value.begin(), value.end(), space);
  auto end = std::find_if_not(value.rbegin(), value.rend(), space).base();
  std::string v;
  for (auto it = begin; it < end; ++it) {
    v += static_cast<char>(std::tolower(static_cast<unsigned char>(*it)));
  }
  return !(v.empty() || v == "0" || v == "false" || v == "no" || v == "off");
}

}  // namespace detops
