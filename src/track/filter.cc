// Run filters and sort orders: a small recursive-descent parser over a
// hand-written lexer, evaluated in C++ over loaded runs.

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>

#include "track/track.h"

namespace detops {
namespace {

enum class Scope { kMetric, kParam, kTag, kEnv, kAttr };
enum class Op { kEq, kNe, kLt, kLe, kGt, kGe };

const char* const kAttributes[] = {"id",      "name",       "kind",     "status",
                                   "dataset", "created_at", "ended_at", "parent"};
const char* const kEnvKeys[] = {"git_commit",    "host",           "os",      "device",
                                "torch_version", "detops_version", "threads", "cpus"};
const char* const kFieldHelp =
    "metrics.KEY, params.KEY, tags.KEY, env.KEY, id, name, kind, status, dataset, created_at, "
    "ended_at or parent";

struct Field {
  Scope scope = Scope::kAttr;
  std::string key;
};

struct Literal {
  bool is_number = false;
  double number = 0;
  std::string text;
};

std::optional<double> ParseNumber(std::string_view s) {
  if (s.empty()) return std::nullopt;
  double v = 0;
  const char* b = s.data();
  if (*b == '+') ++b;
  auto [p, ec] = std::from_chars(b, s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || !std::isfinite(v)) return std::nullopt;
  return v;
}

std::string Quote(std::string_view s) { return "'" + std::string(s) + "'"; }

// Field names: "metrics.map50", "status", "env.host". `pos` is 1-based, for
// errors; `what` is "filter" or "sort".
Result<Field> ParseField(std::string_view name, size_t pos, const char* what) {
  auto err = [&](const std::string& m) {
    return Status::InvalidInput(std::string(what) + " position " + std::to_string(pos) + ": " + m);
  };
  size_t dot = name.find('.');
  if (dot != std::string_view::npos) {
    std::string scope(name.substr(0, dot));
    std::string key(name.substr(dot + 1));
    for (char& c : scope) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    Field f;
    f.key = key;
    if (scope == "metrics" || scope == "metric") {
      f.scope = Scope::kMetric;
    } else if (scope == "params" || scope == "param") {
      f.scope = Scope::kParam;
    } else if (scope == "tags" || scope == "tag") {
      f.scope = Scope::kTag;
    } else if (scope == "env") {
      f.scope = Scope::kEnv;
      if (std::find(std::begin(kEnvKeys), std::end(kEnvKeys), key) == std::end(kEnvKeys)) {
        return err("unknown field " + Quote(name) +
                   " (env has git_commit, host, os, device, torch_version, detops_version, "
                   "threads, cpus)");
      }
    } else {
      return err("unknown field " + Quote(name) + " (expected " + kFieldHelp + ")");
    }
    if (key.empty()) return err(Quote(name) + " needs a key after the '.'");
    return f;
  }
  std::string attr(name);
  for (char& c : attr) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (attr == "dataset_version") attr = "dataset";
  if (attr == "parent_run") attr = "parent";
  if (std::find(std::begin(kAttributes), std::end(kAttributes), attr) == std::end(kAttributes)) {
    return err("unknown field " + Quote(name) + " (expected " + kFieldHelp + ")");
  }
  return Field{Scope::kAttr, attr};
}

// A field's value in a run: a number for metrics, text otherwise.
struct Value {
  bool present = false;
  bool is_number = false;
  double number = 0;
  std::string text;
};

Value Lookup(const RunInfo& r, const Field& f) {
  Value v;
  auto text = [&](std::string s) {
    v.present = true;
    v.text = std::move(s);
  };
  auto in = [&](const std::map<std::string, std::string>& m) {
    auto it = m.find(f.key);
    if (it != m.end()) text(it->second);
  };
  switch (f.scope) {
    case Scope::kMetric: {
      auto it = r.final_metrics.find(f.key);
      if (it != r.final_metrics.end()) {
        v.present = v.is_number = true;
        v.number = it->second;
      }
      return v;
    }
    case Scope::kParam:
      in(r.params);
      return v;
    case Scope::kTag:
      in(r.tags);
      return v;
    case Scope::kEnv: {
      const RunEnvironment& e = r.env;
      if (f.key == "git_commit") text(e.git_commit);
      if (f.key == "host") text(e.host);
      if (f.key == "os") text(e.os);
      if (f.key == "device") text(e.device);
      if (f.key == "torch_version") text(e.torch_version);
      if (f.key == "detops_version") text(e.detops_version);
      if (f.key == "threads") text(std::to_string(e.threads));
      if (f.key == "cpus") text(std::to_string(e.cpus));
      return v;
    }
    case Scope::kAttr:
      if (f.key == "id") text(r.id);
      if (f.key == "name") text(r.name);
      if (f.key == "kind") text(r.kind);
      if (f.key == "status") text(RunStatusName(r.status));
      if (f.key == "dataset" && !r.dataset_version.empty()) text(r.dataset_version);
      if (f.key == "created_at") text(r.created_at);
      if (f.key == "ended_at" && !r.ended_at.empty()) text(r.ended_at);
      if (f.key == "parent" && !r.parent_run.empty()) text(r.parent_run);
      return v;
  }
  return v;
}

template <typename T>
bool Apply(Op op, const T& a, const T& b) {
  switch (op) {
    case Op::kEq:
      return a == b;
    case Op::kNe:
      return a != b;
    case Op::kLt:
      return a < b;
    case Op::kLe:
      return a <= b;
    case Op::kGt:
      return a > b;
    case Op::kGe:
      return a >= b;
  }
  return false;
}

bool Compare(const Value& v, Op op, const Literal& lit) {
  if (!v.present) return op == Op::kNe;
  if (lit.is_number) {
    std::optional<double> n = v.is_number ? std::optional<double>(v.number) : ParseNumber(v.text);
    if (!n) return op == Op::kNe;  // text is never equal to, nor ordered with, a number
    return Apply(op, *n, lit.number);
  }
  return Apply(op, v.text, lit.text);
}

// ---- lexer ----

enum class Tok { kIdent, kString, kNumber, kOp, kLParen, kRParen, kEnd };

struct Token {
  Tok type = Tok::kEnd;
  std::string text;  // identifier (backquotes removed), string contents, operator
  size_t pos = 0;    // 1-based
  double number = 0;
};

std::string Describe(const Token& t) {
  switch (t.type) {
    case Tok::kEnd:
      return "end of filter";
    case Tok::kString:
      return "string " + Quote(t.text);
    default:
      return Quote(t.text);
  }
}

bool IsIdentChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '/' ||
         c == ':' || c == '-';
}

Result<std::vector<Token>> Lex(std::string_view s) {
  std::vector<Token> out;
  size_t i = 0;
  auto err = [&](size_t pos, const std::string& m) {
    return Status::InvalidInput("filter position " + std::to_string(pos + 1) + ": " + m);
  };
  while (i < s.size()) {
    char c = s[i];
    if (std::isspace(static_cast<unsigned char>(c))) {
      ++i;
      continue;
    }
    Token t;
    t.pos = i + 1;
    if (c == '(' || c == ')') {
      t.type = c == '(' ? Tok::kLParen : Tok::kRParen;
      t.text = std::string(1, c);
      ++i;
    } else if (c == '\'' || c == '"') {
      size_t end = s.find(c, i + 1);
      if (end == std::string_view::npos)
        return err(i, "unterminated string (missing closing " + std::string(1, c) + ")");
      t.type = Tok::kString;
      t.text = std::string(s.substr(i + 1, end - i - 1));
      i = end + 1;
    } else if (std::isdigit(static_cast<unsigned char>(c)) || c == '-' || c == '+' ||
               (c == '.' && i + 1 < s.size() &&
                std::isdigit(static_cast<unsigned char>(s[i + 1])))) {
      size_t j = i + 1;
      while (j < s.size() &&
             (std::isalnum(static_cast<unsigned char>(s[j])) || s[j] == '.' ||
              ((s[j] == '-' || s[j] == '+') && (s[j - 1] == 'e' || s[j - 1] == 'E'))))
        ++j;
      t.text = std::string(s.substr(i, j - i));
      auto n = ParseNumber(t.text);
      if (!n) return err(i, "malformed number " + Quote(t.text));
      t.type = Tok::kNumber;
      t.number = *n;
      i = j;
    } else if (std::isalpha(static_cast<unsigned char>(c)) || c == '_' || c == '`') {
      t.type = Tok::kIdent;
      while (i < s.size() && (IsIdentChar(s[i]) || s[i] == '`')) {
        if (s[i] == '`') {
          size_t end = s.find('`', i + 1);
          if (end == std::string_view::npos) return err(i, "unterminated ` quote");
          t.text += s.substr(i + 1, end - i - 1);
          i = end + 1;
        } else {
          t.text += s[i++];
        }
      }
    } else if (c == '=' || c == '!' || c == '<' || c == '>') {
      t.type = Tok::kOp;
      size_t n = 1;
      if (i + 1 < s.size() && (s[i + 1] == '=' || (c == '<' && s[i + 1] == '>'))) n = 2;
      t.text = std::string(s.substr(i, n));
      if (t.text == "!") return err(i, "'!' must be followed by '=' (did you mean 'not'?)");
      i += n;
    } else {
      return err(i, "unexpected character " + Quote(std::string(1, c)));
    }
    out.push_back(std::move(t));
  }
  Token end;
  end.pos = s.size() + 1;
  out.push_back(end);
  return out;
}

bool IsKeyword(const Token& t, const char* kw) {
  if (t.type != Tok::kIdent || t.text.size() != std::char_traits<char>::length(kw)) return false;
  for (size_t i = 0; i < t.text.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(t.text[i])) != kw[i]) return false;
  }
  return true;
}

}  // namespace

struct RunFilter::Node {
  enum class Kind { kAnd, kOr, kNot, kCompare };
  Kind kind = Kind::kCompare;
  std::shared_ptr<const Node> a, b;
  Field field;
  Op op = Op::kEq;
  Literal literal;

  bool Eval(const RunInfo& r) const {
    switch (kind) {
      case Kind::kAnd:
        return a->Eval(r) && b->Eval(r);
      case Kind::kOr:
        return a->Eval(r) || b->Eval(r);
      case Kind::kNot:
        return !a->Eval(r);
      case Kind::kCompare:
        return Compare(Lookup(r, field), op, literal);
    }
    return false;
  }
};

namespace {

using NodePtr = std::shared_ptr<const RunFilter::Node>;

class Parser {
 public:
  explicit Parser(std::vector<Token> toks) : toks_(std::move(toks)) {}

  Result<NodePtr> ParseAll() {
    ASSIGN_OR_RETURN(NodePtr n, ParseOr());
    if (Peek().type != Tok::kEnd) {
      return Error(Peek(), "unexpected " + Describe(Peek()) +
                               " after a complete condition (expected 'and', 'or' or the end)");
    }
    return n;
  }

 private:
  const Token& Peek() const { return toks_[i_]; }
  const Token& Next() { return toks_[i_ == toks_.size() - 1 ? i_ : i_++]; }
  static Status Error(const Token& t, const std::string& m) {
    return Status::InvalidInput("filter position " + std::to_string(t.pos) + ": " + m);
  }
  static NodePtr Join(RunFilter::Node::Kind k, NodePtr a, NodePtr b) {
    auto n = std::make_shared<RunFilter::Node>();
    n->kind = k;
    n->a = std::move(a);
    n->b = std::move(b);
    return n;
  }

  Result<NodePtr> ParseOr() {
    ASSIGN_OR_RETURN(NodePtr left, ParseAnd());
    while (IsKeyword(Peek(), "or")) {
      Next();
      ASSIGN_OR_RETURN(NodePtr right, ParseAnd());
      left = Join(RunFilter::Node::Kind::kOr, left, right);
    }
    return left;
  }

  Result<NodePtr> ParseAnd() {
    ASSIGN_OR_RETURN(NodePtr left, ParseUnary());
    while (IsKeyword(Peek(), "and")) {
      Next();
      ASSIGN_OR_RETURN(NodePtr right, ParseUnary());
      left = Join(RunFilter::Node::Kind::kAnd, left, right);
    }
    return left;
  }

  Result<NodePtr> ParseUnary() {
    // Each 'not' and '(' recurses: a bound keeps "((((..." (a 100 KB
    // argument) from overflowing the stack.
    if (depth_ >= kMaxDepth) {
      return Error(Peek(), "nested deeper than " + std::to_string(kMaxDepth) +
                               " levels of 'not' and parentheses");
    }
    struct Nest {
      int& depth;
      ~Nest() { --depth; }
    } nest{++depth_};
    if (IsKeyword(Peek(), "not")) {
      Next();
      ASSIGN_OR_RETURN(NodePtr inner, ParseUnary());
      return Join(RunFilter::Node::Kind::kNot, inner, nullptr);
    }
    if (Peek().type == Tok::kLParen) {
      Token open = Next();
      if (Peek().type == Tok::kRParen) return Error(Peek(), "empty parentheses");
      ASSIGN_OR_RETURN(NodePtr inner, ParseOr());
      if (Peek().type != Tok::kRParen) {
        return Error(Peek(), "expected ')' to close '(' at position " + std::to_string(open.pos) +
                                 ", found " + Describe(Peek()));
      }
      Next();
      return inner;
    }
    return ParseComparison();
  }

  Result<NodePtr> ParseComparison() {
    Token ft = Next();
    if (ft.type != Tok::kIdent || IsKeyword(ft, "and") || IsKeyword(ft, "or")) {
      return Error(ft, "expected a field (" + std::string(kFieldHelp) + "), found " + Describe(ft));
    }
    ASSIGN_OR_RETURN(Field field, ParseField(ft.text, ft.pos, "filter"));
    Token ot = Next();
    if (ot.type != Tok::kOp) {
      return Error(ot, "expected a comparison (= != < <= > >=) after " + Quote(ft.text) +
                           ", found " + Describe(ot));
    }
    Op op = Op::kEq;
    if (ot.text == "!=" || ot.text == "<>") op = Op::kNe;
    if (ot.text == "<") op = Op::kLt;
    if (ot.text == "<=") op = Op::kLe;
    if (ot.text == ">") op = Op::kGt;
    if (ot.text == ">=") op = Op::kGe;
    if (ot.text == "=<" || ot.text == "=>" || ot.text == "=!") {
      return Error(ot, "unknown operator " + Quote(ot.text) + " (use <=, >= or !=)");
    }
    Token vt = Next();
    if (vt.type != Tok::kNumber && vt.type != Tok::kString) {
      std::string hint = vt.type == Tok::kIdent ? " (quote text values: '" + vt.text + "')" : "";
      return Error(vt,
                   "expected a value after " + Quote(ot.text) + ", found " + Describe(vt) + hint);
    }
    Literal lit;
    lit.is_number = vt.type == Tok::kNumber;
    lit.number = vt.number;
    lit.text = vt.text;
    if (field.scope == Scope::kMetric && !lit.is_number) {
      return Error(
          vt, Quote(ft.text) + " is a metric and compares with numbers, not with " + Describe(vt));
    }
    if (field.scope == Scope::kAttr && field.key == "status" && !ParseRunStatus(lit.text)) {
      return Error(vt, "unknown status " + Quote(lit.text) +
                           " (expected running, finished, failed or killed)");
    }
    auto n = std::make_shared<RunFilter::Node>();
    n->field = std::move(field);
    n->op = op;
    n->literal = std::move(lit);
    return NodePtr(n);
  }

  std::vector<Token> toks_;
  size_t i_ = 0;
  static constexpr int kMaxDepth = 100;
  int depth_ = 0;  // ParseUnary calls on the stack
};

// -1, 0, 1 comparing two present values: numerically when both are numbers.
int CompareForSort(const Value& a, const Value& b) {
  std::optional<double> na = a.is_number ? std::optional<double>(a.number) : ParseNumber(a.text);
  std::optional<double> nb = b.is_number ? std::optional<double>(b.number) : ParseNumber(b.text);
  if (na && nb) return *na < *nb ? -1 : (*na > *nb ? 1 : 0);
  int c = a.text.compare(b.text);
  return c < 0 ? -1 : (c > 0 ? 1 : 0);
}

}  // namespace

RunFilter::RunFilter() = default;

bool RunFilter::Matches(const RunInfo& run) const { return !root_ || root_->Eval(run); }

Result<RunFilter> ParseRunFilter(std::string_view text) {
  ASSIGN_OR_RETURN(std::vector<Token> toks, Lex(text));
  if (toks.size() == 1) return RunFilter();  // empty or blank: every run
  Parser p(std::move(toks));
  ASSIGN_OR_RETURN(NodePtr root, p.ParseAll());
  return RunFilter(std::move(root));
}

Result<std::vector<RunSortKey>> ParseRunSort(std::string_view text) {
  std::vector<RunSortKey> keys;
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    if (comma == std::string_view::npos) comma = text.size();
    std::string_view part = text.substr(start, comma - start);
    size_t b = part.find_first_not_of(" \t");
    size_t pos = start + (b == std::string_view::npos ? 0 : b) + 1;
    if (b == std::string_view::npos) {
      if (text.find_first_not_of(" \t") == std::string_view::npos) return keys;  // empty sort
      return Status::InvalidInput("sort position " + std::to_string(pos) +
                                  ": expected a field before ','");
    }
    part = part.substr(b);
    size_t sp = part.find_first_of(" \t");
    std::string_view name = part.substr(0, sp);
    // "name " (a blank and no direction) leaves no non-blank after `sp`.
    size_t dir_at = sp == std::string_view::npos ? sp : part.find_first_not_of(" \t", sp);
    std::string_view rest =
        dir_at == std::string_view::npos ? std::string_view() : part.substr(dir_at);
    while (!rest.empty() && (rest.back() == ' ' || rest.back() == '\t')) rest.remove_suffix(1);
    ASSIGN_OR_RETURN(Field f, ParseField(name, pos, "sort"));
    (void)f;
    RunSortKey k;
    k.field = std::string(name);
    std::string dir(rest);
    for (char& c : dir) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (dir == "desc") {
      k.descending = true;
    } else if (!dir.empty() && dir != "asc") {
      return Status::InvalidInput("sort position " + std::to_string(pos + sp + 1) +
                                  ": expected asc or desc after " + Quote(name) + ", found " +
                                  Quote(rest));
    }
    keys.push_back(std::move(k));
    start = comma + 1;
  }
  return keys;
}

Result<std::vector<RunInfo>> SelectRuns(std::vector<RunInfo> runs, const RunQuery& query) {
  if (query.limit < 0)
    return Status::InvalidInput("limit must be >= 0, got " + std::to_string(query.limit));
  ASSIGN_OR_RETURN(RunFilter filter, ParseRunFilter(query.filter));
  ASSIGN_OR_RETURN(std::vector<RunSortKey> keys, ParseRunSort(query.sort));
  std::vector<std::pair<Field, bool>> fields;
  for (const RunSortKey& k : keys) {
    ASSIGN_OR_RETURN(Field f, ParseField(k.field, 1, "sort"));
    fields.emplace_back(std::move(f), k.descending);
  }
  std::erase_if(runs, [&](const RunInfo& r) { return !filter.Matches(r); });
  std::stable_sort(runs.begin(), runs.end(), [&](const RunInfo& a, const RunInfo& b) {
    for (const auto& [f, desc] : fields) {
      Value va = Lookup(a, f), vb = Lookup(b, f);
      if (!va.present || !vb.present) {
        if (va.present != vb.present) return va.present;  // missing values last
        continue;
      }
      // created_at has millisecond resolution: creation order breaks ties.
      int c = f.scope == Scope::kAttr && f.key == "created_at"
                  ? (a.seq < b.seq ? -1 : (a.seq > b.seq ? 1 : 0))
                  : CompareForSort(va, vb);
      if (c != 0) return desc ? c > 0 : c < 0;
    }
    return a.seq > b.seq;  // newest first
  });
  if (query.limit > 0 && runs.size() > static_cast<size_t>(query.limit)) {
    runs.resize(static_cast<size_t>(query.limit));
  }
  return runs;
}

}  // namespace detops
