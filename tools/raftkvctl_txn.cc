#include "tools/raftkvctl_txn.h"

#include <unistd.h>

#include <algorithm>
#include <iostream>
#include <map>

#include "client/kv.pb.h"
#include "util/json_bytes.h"

namespace raftkv::ctl {
namespace {

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

std::string Trim(const std::string& s) {
  size_t begin = 0;
  size_t end = s.size();
  while (begin < end && IsSpace(s[begin])) ++begin;
  while (end > begin && IsSpace(s[end - 1])) --end;
  return s.substr(begin, end - begin);
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

void AppendUtf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xc0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xe0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else {
    out->push_back(static_cast<char>(0xf0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3f)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  }
}

// The escape at text[*pos] (just after the backslash) of a double-quoted
// word, as Go's strconv.Unquote reads it; advances *pos past it.
bool ReadEscape(const std::string& text, size_t* pos, std::string* out) {
  if (*pos >= text.size()) return false;
  const char c = text[(*pos)++];
  static const std::map<char, char> kSimple = {
      {'a', '\a'}, {'b', '\b'}, {'f', '\f'},  {'n', '\n'}, {'r', '\r'},
      {'t', '\t'}, {'v', '\v'}, {'\\', '\\'}, {'"', '"'},  {'\'', '\''}};
  if (auto it = kSimple.find(c); it != kSimple.end()) {
    out->push_back(it->second);
    return true;
  }
  if (c >= '0' && c <= '7') {  // \ooo: exactly three octal digits
    int v = c - '0';
    for (int i = 0; i < 2; ++i) {
      if (*pos >= text.size() || text[*pos] < '0' || text[*pos] > '7') {
        return false;
      }
      v = v * 8 + (text[(*pos)++] - '0');
    }
    if (v > 0xff) return false;
    out->push_back(static_cast<char>(v));
    return true;
  }
  const int digits = c == 'x' ? 2 : c == 'u' ? 4 : c == 'U' ? 8 : 0;
  if (digits == 0 || *pos + digits > text.size()) return false;
  uint32_t v = 0;
  for (int i = 0; i < digits; ++i) {
    const int d = HexDigit(text[(*pos)++]);
    if (d < 0) return false;
    v = v * 16 + d;
  }
  if (c == 'x') {
    out->push_back(static_cast<char>(v));
  } else if (v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) {
    return false;
  } else {
    AppendUtf8(v, out);
  }
  return true;
}

// One word of `line` from *pos (after any spaces): "double-quoted" with
// escapes, 'single-quoted' as is, or bare up to a space. False at the end
// of the line; an error if a quote is left open.
StatusOr<bool> ReadWord(const std::string& line, size_t* pos,
                        std::string* word) {
  while (*pos < line.size() && IsSpace(line[*pos])) ++*pos;
  if (*pos >= line.size()) return false;
  word->clear();
  const char quote = line[*pos];
  if (quote == '"' || quote == '\'') {
    for (++*pos; *pos < line.size();) {
      const char c = line[(*pos)++];
      if (c == quote) return true;
      if (quote == '"' && c == '\\') {
        if (!ReadEscape(line, pos, word)) {
          return Status::InvalidArgument("bad escape in a quoted string");
        }
      } else {
        word->push_back(c);
      }
    }
    return Status::InvalidArgument("unterminated quoted string");
  }
  while (*pos < line.size() && !IsSpace(line[*pos])) {
    word->push_back(line[(*pos)++]);
  }
  return true;
}

StatusOr<std::vector<std::string>> Words(const std::string& line) {
  std::vector<std::string> words;
  size_t pos = 0;
  std::string word;
  for (;;) {
    auto more = ReadWord(line, &pos, &word);
    if (!more.ok()) return more.status();
    if (!*more) return words;
    words.push_back(word);
  }
}

Status Malformed(const std::string& what, const std::string& line,
                 const std::string& why) {
  return Status::InvalidArgument("malformed " + what + ": " + line + " (" +
                                 why + ")");
}

// target("key") op "value".
StatusOr<kv::Compare> ParseCompare(const std::string& line) {
  static const char kForm[] = R"(expected e.g. value("key") = "v")";
  const size_t open = line.find('(');
  if (open == std::string::npos) return Malformed("comparison", line, kForm);
  const std::string target = Trim(line.substr(0, open));
  size_t pos = open + 1;
  while (pos < line.size() && IsSpace(line[pos])) ++pos;
  if (pos >= line.size() || (line[pos] != '"' && line[pos] != '\'')) {
    return Malformed("comparison", line, "the key must be quoted");
  }
  std::string key;
  auto got = ReadWord(line, &pos, &key);
  if (!got.ok()) return Malformed("comparison", line, got.status().message());
  while (pos < line.size() && IsSpace(line[pos])) ++pos;
  if (pos >= line.size() || line[pos] != ')') {
    return Malformed("comparison", line, kForm);
  }
  auto rest = Words(line.substr(pos + 1));
  if (!rest.ok()) return Malformed("comparison", line, rest.status().message());
  if (rest->size() != 2) return Malformed("comparison", line, kForm);
  const std::string& op = (*rest)[0];
  const std::string& value = (*rest)[1];
  kv::Compare c;
  c.set_key(key);
  if (op == "=" || op == "==") {
    c.set_result(kv::Compare::EQUAL);
  } else if (op == "!=") {
    c.set_result(kv::Compare::NOT_EQUAL);
  } else if (op == ">") {
    c.set_result(kv::Compare::GREATER);
  } else if (op == "<") {
    c.set_result(kv::Compare::LESS);
  } else {
    return Malformed("comparison", line,
                     "unknown operator " + op + "; one of = == != > <");
  }
  if (target == "val" || target == "value") {
    c.set_target(kv::Compare::VALUE);
    c.set_value(value);
    return c;
  }
  int64_t n = 0;
  const bool number = ParseInt64(value, &n);
  if (target == "ver" || target == "version") {
    c.set_target(kv::Compare::VERSION);
    c.set_version(n);
  } else if (target == "c" || target == "create") {
    c.set_target(kv::Compare::CREATE);
    c.set_create_revision(n);
  } else if (target == "m" || target == "mod") {
    c.set_target(kv::Compare::MOD);
    c.set_mod_revision(n);
  } else {
    return Malformed(
        "comparison", line,
        "unknown target " + target + "; one of value, version, create, mod");
  }
  if (!number) {
    return Malformed("comparison", line, "not a number: " + value);
  }
  return c;
}

// The flags of one request line: --name[=value] (dashes or underscores);
// for the flags in `valued`, the value may also be the next word.
struct OpWords {
  std::vector<std::string> positional;
  std::map<std::string, std::string> flags;
};

StatusOr<OpWords> SplitOpWords(const std::vector<std::string>& words,
                               const std::vector<std::string>& known,
                               const std::vector<std::string>& valued) {
  OpWords out;
  for (size_t i = 1; i < words.size(); ++i) {
    const std::string& w = words[i];
    if (w.size() < 3 || w.compare(0, 2, "--") != 0) {
      out.positional.push_back(w);
      continue;
    }
    std::string name = w.substr(2);
    std::string value;
    const size_t eq = name.find('=');
    const bool has_value = eq != std::string::npos;
    if (has_value) {
      value = name.substr(eq + 1);
      name.resize(eq);
    }
    std::replace(name.begin(), name.end(), '_', '-');
    if (std::find(known.begin(), known.end(), name) == known.end()) {
      return Status::InvalidArgument("unknown flag --" + name);
    }
    const bool needs_value =
        std::find(valued.begin(), valued.end(), name) != valued.end();
    if (needs_value && !has_value) {
      if (i + 1 >= words.size()) {
        return Status::InvalidArgument("--" + name + " needs a value");
      }
      value = words[++i];
    } else if (!needs_value && has_value && value != "true") {
      if (value != "false") {
        return Status::InvalidArgument("--" + name + " takes no value");
      }
      continue;  // --flag=false: as if absent
    }
    out.flags[name] = value;
  }
  return out;
}

// KEY [END] with --prefix: the range of a get or del.
Status SetRange(const OpWords& op, std::string* key, std::string* range_end) {
  if (op.positional.empty() || op.positional.size() > 2) {
    return Status::InvalidArgument("expected KEY [END]");
  }
  *key = op.positional[0];
  if (op.flags.count("prefix") > 0) {
    if (op.positional.size() == 2) {
      return Status::InvalidArgument("--prefix with an END");
    }
    *range_end = PrefixRangeEnd(*key);
    if (key->empty()) *key = std::string(1, '\0');
  } else if (op.positional.size() == 2) {
    *range_end = op.positional[1];
  }
  return Status::OK();
}

Status NumberFlag(const OpWords& op, const std::string& name, int64_t* out) {
  auto it = op.flags.find(name);
  if (it == op.flags.end()) return Status::OK();
  if (!ParseInt64(it->second, out) || *out < 0) {
    return Status::InvalidArgument("--" + name +
                                   ": not a number >= 0: " + it->second);
  }
  return Status::OK();
}

StatusOr<kv::RequestOp> ParseGet(const std::vector<std::string>& words) {
  auto op =
      SplitOpWords(words, {"prefix", "limit", "rev", "keys-only", "count-only"},
                   {"limit", "rev"});
  if (!op.ok()) return op.status();
  kv::RequestOp out;
  kv::RangeRequest* r = out.mutable_request_range();
  RAFTKV_RETURN_IF_ERROR(
      SetRange(*op, r->mutable_key(), r->mutable_range_end()));
  int64_t limit = 0;
  int64_t rev = 0;
  RAFTKV_RETURN_IF_ERROR(NumberFlag(*op, "limit", &limit));
  RAFTKV_RETURN_IF_ERROR(NumberFlag(*op, "rev", &rev));
  r->set_limit(limit);
  r->set_revision(rev);
  r->set_keys_only(op->flags.count("keys-only") > 0);
  r->set_count_only(op->flags.count("count-only") > 0);
  return out;
}

StatusOr<kv::RequestOp> ParsePut(const std::vector<std::string>& words) {
  auto op = SplitOpWords(words, {"lease"}, {"lease"});
  if (!op.ok()) return op.status();
  if (op->positional.size() != 2) {
    return Status::InvalidArgument("expected put KEY VALUE");
  }
  kv::RequestOp out;
  kv::PutRequest* p = out.mutable_request_put();
  p->set_key(op->positional[0]);
  p->set_value(op->positional[1]);
  if (auto it = op->flags.find("lease"); it != op->flags.end()) {
    int64_t id = 0;
    if (!ParseLeaseId(it->second, &id)) {
      return Status::InvalidArgument("--lease: not a lease id in hex: " +
                                     it->second);
    }
    p->set_lease(id);
  }
  return out;
}

StatusOr<kv::RequestOp> ParseDel(const std::vector<std::string>& words) {
  auto op = SplitOpWords(words, {"prefix", "prev-kv"}, {});
  if (!op.ok()) return op.status();
  kv::RequestOp out;
  kv::DeleteRangeRequest* d = out.mutable_request_delete_range();
  RAFTKV_RETURN_IF_ERROR(
      SetRange(*op, d->mutable_key(), d->mutable_range_end()));
  d->set_prev_kv(op->flags.count("prev-kv") > 0);
  return out;
}

StatusOr<kv::RequestOp> ParseRequest(const std::string& line) {
  auto words = Words(line);
  if (!words.ok()) return Malformed("request", line, words.status().message());
  const std::string verb = words->empty() ? "" : (*words)[0];
  StatusOr<kv::RequestOp> op = Status::InvalidArgument(
      "unknown request " + verb + "; one of get, put, del");
  if (verb == "get") {
    op = ParseGet(*words);
  } else if (verb == "put") {
    op = ParsePut(*words);
  } else if (verb == "del" || verb == "delete") {
    op = ParseDel(*words);
  }
  if (!op.ok()) return Malformed("request", line, op.status().message());
  return op;
}

// The lines of one section, up to a blank line or the end of the input.
std::vector<std::string> ReadSection(std::istream& in, std::ostream* prompts,
                                     const char* prompt) {
  if (prompts != nullptr) *prompts << prompt << std::endl;
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line)) {
    line = Trim(line);
    if (line.empty()) break;
    lines.push_back(line);
  }
  return lines;
}

}  // namespace

StatusOr<kv::TxnRequest> ReadTxn(std::istream& in, std::ostream* prompts) {
  kv::TxnRequest txn;
  for (const std::string& line : ReadSection(in, prompts, "compares:")) {
    auto c = ParseCompare(line);
    if (!c.ok()) return c.status();
    *txn.add_compare() = std::move(c).value();
  }
  for (auto* ops : {txn.mutable_success(), txn.mutable_failure()}) {
    const char* prompt = ops == txn.mutable_success()
                             ? "success requests (get, put, del):"
                             : "failure requests (get, put, del):";
    for (const std::string& line : ReadSection(in, prompts, prompt)) {
      auto op = ParseRequest(line);
      if (!op.ok()) return op.status();
      *ops->Add() = std::move(op).value();
    }
  }
  return txn;
}

namespace {

void PrintText(const kv::ResponseOp& r) {
  std::cout << "\n";
  switch (r.response_case()) {
    case kv::ResponseOp::kResponsePut:
      std::cout << "OK\n";
      break;
    case kv::ResponseOp::kResponseDeleteRange:
      std::cout << r.response_delete_range().deleted() << "\n";
      for (const kv::KeyValue& kv : r.response_delete_range().prev_kvs()) {
        std::cout << kv.key() << "\n" << kv.value() << "\n";
      }
      break;
    case kv::ResponseOp::kResponseRange:
      for (const kv::KeyValue& kv : r.response_range().kvs()) {
        std::cout << kv.key() << "\n" << kv.value() << "\n";
      }
      break;
    default:
      break;
  }
}

Json ResponseJson(const kv::ResponseOp& r, const kv::RequestOp& request,
                  int64_t revision) {
  switch (r.response_case()) {
    case kv::ResponseOp::kResponsePut:
      return {{"type", "put"}, {"revision", revision}};
    case kv::ResponseOp::kResponseDeleteRange: {
      const kv::DeleteRangeResponse& d = r.response_delete_range();
      Json j = {{"type", "del"}, {"deleted", d.deleted()}};
      if (request.request_delete_range().prev_kv()) {
        Json prev = Json::array();
        for (const kv::KeyValue& kv : d.prev_kvs()) {
          prev.push_back(KeyValueJson(FromProto(kv)));
        }
        j["prev_kvs"] = std::move(prev);
      }
      return j;
    }
    case kv::ResponseOp::kResponseRange: {
      const kv::RangeResponse& g = r.response_range();
      const bool with_value = !request.request_range().keys_only();
      Json kvs = Json::array();
      for (const kv::KeyValue& kv : g.kvs()) {
        kvs.push_back(KeyValueJson(FromProto(kv), with_value));
      }
      return {{"type", "get"},
              {"kvs", std::move(kvs)},
              {"more", g.more()},
              {"count", g.count()}};
    }
    default:
      return Json::object();
  }
}

}  // namespace

int RunTxn(Client& client, const std::vector<std::string>& args,
           const Options& options) {
  if (args.size() != 1) return UsageError("usage: txn (reads stdin)");
  auto txn = ReadTxn(std::cin, isatty(STDIN_FILENO) ? &std::cout : nullptr);
  if (!txn.ok()) return UsageError(txn.status().message());
  auto r = client.Txn(*txn);
  if (!r.ok()) return Fail(r.status());
  const auto& requests = r->succeeded() ? txn->success() : txn->failure();
  if (options.json) {
    Json responses = Json::array();
    for (int i = 0; i < r->responses_size() && i < requests.size(); ++i) {
      responses.push_back(
          ResponseJson(r->responses(i), requests[i], r->header().revision()));
    }
    PrintJson(
        {{"succeeded", r->succeeded()}, {"responses", std::move(responses)}});
  } else {
    std::cout << (r->succeeded() ? "SUCCESS" : "FAILURE") << "\n";
    for (const kv::ResponseOp& op : r->responses()) PrintText(op);
  }
  return r->succeeded() ? kOk : kNotFound;
}

}  // namespace raftkv::ctl
