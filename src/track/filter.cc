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

// A field's value in a run: a number for numeric fields, text otherwise.
struct Value {
  bool present = false;
  bool is_number = false;
  double number = 0;
  std::string text;
};

Value Text(std::string s) { return {true, false, 0, std::move(s)}; }
Value Number(double v) { return {true, true, v, ""}; }
Value TextIfSet(const std::string& s) { return s.empty() ? Value{} : Text(s); }
Value Entry(const std::map<std::string, std::string>& m, const std::string& key) {
  auto it = m.find(key);
  return it == m.end() ? Value{} : Text(it->second);
}

// How a field's literals are checked: numbers only, a run status, any.
enum class FieldType { kNumber, kText, kStatus };
// How runs sort on a field.
enum class SortBy {
  kValue,
  kCreation,  // creation order (created_at has millisecond resolution)
  kNever,     // ids are random: sorting on them means nothing
};

// The fields a filter or a sort may name, and how to read each from a run.
// A name ending in '.' is a family: any KEY follows it ("metrics.map50").
// Names are case-insensitive; a family's KEY is not.
struct FieldDef {
  std::string_view name;
  std::string_view alias;  // an older spelling also accepted, or ""
  FieldType type;
  SortBy sort;
  Value (*read)(const RunInfo& run, const std::string& key);
  bool family() const { return name.back() == '.'; }
};

// clang-format off
const FieldDef kFields[] = {
    {"metrics.", "metric.", FieldType::kNumber, SortBy::kValue,
     [](const RunInfo& r, const std::string& k) {
       auto it = r.final_metrics.find(k);
       return it == r.final_metrics.end() ? Value{} : Number(it->second);
     }},
    {"params.", "param.", FieldType::kText, SortBy::kValue,
     [](const RunInfo& r, const std::string& k) { return Entry(r.params, k); }},
    {"tags.", "tag.", FieldType::kText, SortBy::kValue,
     [](const RunInfo& r, const std::string& k) { return Entry(r.tags, k); }},
    {"env.git_commit", "", FieldType::kText, SortBy::kValue,
     [](const RunInfo& r, const std::string&) { return Text(r.env.git_commit); }},
    {"env.host", "", FieldType::kText, SortBy::kValue,
     [](const RunInfo& r, const std::string&) { return Text(r.env.host); }},
    {"env.os", "", FieldType::kText, SortBy::kValue,
     [](const RunInfo& r, const std::string&) { return Text(r.env.os); }},
    {"env.device", "", FieldType::kText, SortBy::kValue,
     [](const RunInfo& r, const std::string&) { return Text(r.env.device); }},
    {"env.torch_version", "", FieldType::kText, SortBy::kValue,
     [](const RunInfo& r, const std::string&) { return Text(r.env.torch_version); }},
    {"env.detops_version", "", FieldType::kText, SortBy::kValue,
     [](const RunInfo& r, const std::string&) { return Text(r.env.detops_version); }},
    {"env.threads", "", FieldType::kNumber, SortBy::kValue,
     [](const RunInfo& r, const std::string&) { return Number(r.env.threads); }},
    {"env.cpus", "", FieldType::kNumber, SortBy::kValue,
     [](const RunInfo& r, const std::string&) { return Number(r.env.cpus); }},
    {"id", "", FieldType::kText, SortBy::kNever,
     [](const RunInfo& r, const std::string&) { return Text(r.id); }},
    {"name", "", FieldType::kText, SortBy::kValue,
     [](const RunInfo& r, const std::string&) { return Text(r.name); }},
    {"kind", "", FieldType::kText, SortBy::kValue,
     [](const RunInfo& r, const std::string&) { return Text(r.kind); }},
    {"status", "", FieldType::kStatus, SortBy::kValue,
     [](const RunInfo& r, const std::string&) { return Text(RunStatusName(r.status)); }},
    {"dataset", "dataset_version", FieldType::kText, SortBy::kValue,
     [](const RunInfo& r, const std::string&) { return TextIfSet(r.dataset_version); }},
    {"created_at", "", FieldType::kText, SortBy::kCreation,
     [](const RunInfo& r, const std::string&) { return Text(r.created_at); }},
    {"ended_at", "", FieldType::kText, SortBy::kValue,
     [](const RunInfo& r, const std::string&) { return TextIfSet(r.ended_at); }},
    {"parent", "parent_run", FieldType::kText, SortBy::kValue,
     [](const RunInfo& r, const std::string&) { return TextIfSet(r.parent_run); }},
};
// clang-format on

// "metrics.KEY, ..., env.KEY, id, ... or parent" (`env` as one family when
// `env_keys` is false), or the env keys alone.
std::string FieldList(bool env_keys) {
  std::vector<std::string> names;
  for (const FieldDef& f : kFields) {
    bool env = f.name.starts_with("env.");
    if (env_keys) {
      if (env) names.emplace_back(f.name.substr(4));
    } else if (!env) {
      names.push_back(std::string(f.name) + (f.family() ? "KEY" : ""));
    } else if (names.empty() || names.back() != "env.KEY") {
      names.emplace_back("env.KEY");
    }
  }
  std::string out;
  for (size_t i = 0; i < names.size(); ++i) {
    out += (i == 0 ? "" : i + 1 == names.size() ? " or " : ", ") + names[i];
  }
  return out;
}

struct Field {
  const FieldDef* def = nullptr;
  std::string key;  // a family's KEY; "" otherwise
  Value Read(const RunInfo& run) const { return def->read(run, key); }
  std::string Name() const { return std::string(def->name) + key; }
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

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Field names: "metrics.map50", "status", "env.host". `pos` is 1-based, for
// errors; `what` is "filter" or "sort".
Result<Field> ParseField(std::string_view name, size_t pos, const char* what) {
  auto err = [&](const std::string& m) {
    return Status::InvalidInput(std::string(what) + " position " + std::to_string(pos) + ": " + m);
  };
  const std::string lower = Lower(name);
  for (const FieldDef& f : kFields) {
    for (std::string_view spelling : {f.name, f.alias}) {
      if (spelling.empty()) continue;
      if (!f.family()) {
        if (lower == spelling) return Field{&f, ""};
      } else if (lower.starts_with(spelling)) {
        if (name.size() == spelling.size()) return err(Quote(name) + " needs a key after the '.'");
        return Field{&f, std::string(name.substr(spelling.size()))};
      }
    }
  }
  if (lower.starts_with("env.")) {
    return err("unknown field " + Quote(name) + " (env has " + FieldList(true) + ")");
  }
  return err("unknown field " + Quote(name) + " (expected " + FieldList(false) + ")");
}

enum class Op { kEq, kNe, kLt, kLe, kGt, kGe };

// The comparison operators; two-character spellings first, since the lexer
// takes the first that matches.
struct OpSpelling {
  std::string_view text;
  Op op;
};
const OpSpelling kOps[] = {{"==", Op::kEq}, {"!=", Op::kNe}, {"<>", Op::kNe}, {"<=", Op::kLe},
                           {">=", Op::kGe}, {"=", Op::kEq},  {"<", Op::kLt},  {">", Op::kGt}};
constexpr const char* kOpHelp = "= == != <> < <= > >=";

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
  Op op = Op::kEq;  // kOp only
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
      auto it = std::find_if(std::begin(kOps), std::end(kOps),
                             [&](const OpSpelling& o) { return s.substr(i).starts_with(o.text); });
      if (it == std::end(kOps)) return err(i, "'!' must be followed by '=' (did you mean 'not'?)");
      t.type = Tok::kOp;
      t.text = std::string(it->text);
      t.op = it->op;
      i += it->text.size();
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
        return Compare(field.Read(r), op, literal);
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
      return Error(ft, "expected a field (" + FieldList(false) + "), found " + Describe(ft));
    }
    ASSIGN_OR_RETURN(Field field, ParseField(ft.text, ft.pos, "filter"));
    Token ot = Next();
    if (ot.type != Tok::kOp) {
      return Error(ot, "expected a comparison (" + std::string(kOpHelp) + ") after " +
                           Quote(ft.text) + ", found " + Describe(ot));
    }
    Token vt = Next();
    if (vt.type != Tok::kNumber && vt.type != Tok::kString) {
      std::string hint = vt.type == Tok::kIdent ? " (quote text values: '" + vt.text + "')"
                         : vt.type == Tok::kOp ? " (the operators are " + std::string(kOpHelp) + ")"
                                               : "";
      return Error(vt,
                   "expected a value after " + Quote(ot.text) + ", found " + Describe(vt) + hint);
    }
    Literal lit;
    lit.is_number = vt.type == Tok::kNumber;
    lit.number = vt.number;
    lit.text = vt.text;
    if (field.def->type == FieldType::kNumber && !lit.is_number) {
      return Error(vt, Quote(ft.text) + (field.def->family() ? " is a metric" : " is a number") +
                           " and compares with numbers, not with " + Describe(vt));
    }
    if (field.def->type == FieldType::kStatus && !ParseRunStatus(lit.text)) {
      return Error(vt, "unknown status " + Quote(lit.text) +
                           " (expected running, finished, failed or killed)");
    }
    auto n = std::make_shared<RunFilter::Node>();
    n->field = std::move(field);
    n->op = ot.op;
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

struct RunSelection::SortPlan {
  struct Key {
    Field field;
    bool descending = false;
  };
  std::vector<Key> keys;
};

namespace {

Result<RunSelection::SortPlan> ParseSort(std::string_view text) {
  RunSelection::SortPlan plan;
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    if (comma == std::string_view::npos) comma = text.size();
    std::string_view part = text.substr(start, comma - start);
    size_t b = part.find_first_not_of(" \t");
    size_t pos = start + (b == std::string_view::npos ? 0 : b) + 1;
    if (b == std::string_view::npos) {
      if (text.find_first_not_of(" \t") == std::string_view::npos) return plan;  // empty sort
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
    if (f.def->sort == SortBy::kNever) {
      return Status::InvalidInput("sort position " + std::to_string(pos) +
                                  ": runs do not sort by " + Quote(name) +
                                  " (ids are random; sort by created_at)");
    }
    std::string dir = Lower(rest);
    if (!dir.empty() && dir != "asc" && dir != "desc") {
      return Status::InvalidInput("sort position " + std::to_string(pos + sp + 1) +
                                  ": expected asc or desc after " + Quote(name) + ", found " +
                                  Quote(rest));
    }
    plan.keys.push_back({std::move(f), dir == "desc"});
    start = comma + 1;
  }
  return plan;
}

}  // namespace

Result<std::vector<RunSortKey>> ParseRunSort(std::string_view text) {
  ASSIGN_OR_RETURN(RunSelection::SortPlan plan, ParseSort(text));
  std::vector<RunSortKey> keys;
  for (const auto& k : plan.keys) keys.push_back({k.field.Name(), k.descending});
  return keys;
}

Result<RunSelection> RunSelection::Parse(const RunQuery& query) {
  if (query.limit < 0)
    return Status::InvalidInput("limit must be >= 0, got " + std::to_string(query.limit));
  RunSelection s;
  ASSIGN_OR_RETURN(s.filter_, ParseRunFilter(query.filter));
  ASSIGN_OR_RETURN(SortPlan plan, ParseSort(query.sort));
  s.sort_ = std::make_shared<const SortPlan>(std::move(plan));
  s.limit_ = query.limit;
  return s;
}

std::vector<RunInfo> RunSelection::Apply(std::vector<RunInfo> runs) const {
  std::erase_if(runs, [&](const RunInfo& r) { return !filter_.Matches(r); });
  std::stable_sort(runs.begin(), runs.end(), [&](const RunInfo& a, const RunInfo& b) {
    for (const SortPlan::Key& k : sort_->keys) {
      Value va = k.field.Read(a), vb = k.field.Read(b);
      if (!va.present || !vb.present) {
        if (va.present != vb.present) return va.present;  // missing values last
        continue;
      }
      int c = k.field.def->sort == SortBy::kCreation
                  ? (a.seq < b.seq ? -1 : (a.seq > b.seq ? 1 : 0))
                  : CompareForSort(va, vb);
      if (c != 0) return k.descending ? c > 0 : c < 0;
    }
    return a.seq > b.seq;  // newest first
  });
  if (limit_ > 0 && runs.size() > static_cast<size_t>(limit_)) {
    runs.resize(static_cast<size_t>(limit_));
  }
  return runs;
}

std::string RunFieldNames() { return FieldList(false); }

}  // namespace detops
