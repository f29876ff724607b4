// JSON (RFC 8259) parsing and writing for the small documents strata reads and writes.
#include "engine/json.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>

#include "engine/error.h"

namespace strata::json {

bool Value::as_bool() const {
  check(is_bool(), "json: expected a boolean");
  return std::get<bool>(data_);
}

int64_t Value::as_int() const {
  check(is_int(), "json: expected an integer");
  return std::get<int64_t>(data_);
}

double Value::as_double() const {
  if (is_int()) return static_cast<double>(std::get<int64_t>(data_));
  if (is_string()) {
    const std::string& s = std::get<std::string>(data_);
    if (s == "nan") return std::numeric_limits<double>::quiet_NaN();
    if (s == "inf") return std::numeric_limits<double>::infinity();
    if (s == "-inf") return -std::numeric_limits<double>::infinity();
  }
  check(std::holds_alternative<double>(data_), "json: expected a number");
  return std::get<double>(data_);
}

const std::string& Value::as_string() const {
  check(is_string(), "json: expected a string");
  return std::get<std::string>(data_);
}

const Array& Value::as_array() const {
  check(is_array(), "json: expected an array");
  return *std::get<std::shared_ptr<Array>>(data_);
}

const Object& Value::as_object() const {
  check(is_object(), "json: expected an object");
  return *std::get<std::shared_ptr<Object>>(data_);
}

Array& Value::as_array() {
  check(is_array(), "json: expected an array");
  return *std::get<std::shared_ptr<Array>>(data_);
}

Object& Value::as_object() {
  check(is_object(), "json: expected an object");
  return *std::get<std::shared_ptr<Object>>(data_);
}

const Value* Value::find(std::string_view key) const {
  for (const auto& [k, v] : as_object()) {
    if (k == key) return &v;
  }
  return nullptr;
}

const Value& Value::at(std::string_view key) const {
  const Value* v = find(key);
  check(v != nullptr, "json: missing key \"", key, "\"");
  return *v;
}

namespace {

class Parser {
 public:
  explicit Parser(std::string_view text) : text_(text) {}

  Value parse_document() {
    Value v = parse_value(0);
    skip_whitespace();
    if (pos_ != text_.size()) fail("end of input");
    return v;
  }

 private:
  static constexpr int kMaxDepth = 64;

  [[noreturn]] void fail(const char* expected) const {
    throw Error(cat("json: at byte ", pos_, ": expected ", expected));
  }

  void skip_whitespace() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t' || text_[pos_] == '\n' || text_[pos_] == '\r')) {
      ++pos_;
    }
  }

  bool consume(char c) {
    skip_whitespace();
    if (pos_ < text_.size() && text_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }

  void expect_literal(std::string_view word) {
    if (text_.substr(pos_, word.size()) != word) fail("a value");
    pos_ += word.size();
  }

  Value parse_value(int depth) {
    if (depth > kMaxDepth) fail("less nesting");
    skip_whitespace();
    if (pos_ >= text_.size()) fail("a value");
    char c = text_[pos_];
    if (c == '{') return parse_object(depth);
    if (c == '[') return parse_array(depth);
    if (c == '"') return Value(parse_string());
    if (c == 't') return expect_literal("true"), Value(true);
    if (c == 'f') return expect_literal("false"), Value(false);
    if (c == 'n') return expect_literal("null"), Value();
    if (c == '-' || (c >= '0' && c <= '9')) return parse_number();
    fail("a value");
  }

  Value parse_object(int depth) {
    ++pos_;
    Object members;
    if (consume('}')) return Value(std::move(members));
    do {
      skip_whitespace();
      if (pos_ >= text_.size() || text_[pos_] != '"') fail("a string key");
      std::string key = parse_string();
      if (!consume(':')) fail("':'");
      members.emplace_back(std::move(key), parse_value(depth + 1));
    } while (consume(','));
    if (!consume('}')) fail("',' or '}'");
    return Value(std::move(members));
  }

  Value parse_array(int depth) {
    ++pos_;
    Array items;
    if (consume(']')) return Value(std::move(items));
    do {
      items.push_back(parse_value(depth + 1));
    } while (consume(','));
    if (!consume(']')) fail("',' or ']'");
    return Value(std::move(items));
  }

  unsigned parse_hex4() {
    if (pos_ + 4 > text_.size()) fail("4 hex digits");
    unsigned v = 0;
    for (int i = 0; i < 4; ++i) {
      char c = text_[pos_++];
      v <<= 4;
      if (c >= '0' && c <= '9') v |= static_cast<unsigned>(c - '0');
      else if (c >= 'a' && c <= 'f') v |= static_cast<unsigned>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') v |= static_cast<unsigned>(c - 'A' + 10);
      else fail("a hex digit");
    }
    return v;
  }

  static void append_utf8(std::string& out, unsigned cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }

  std::string parse_string() {
    ++pos_;  // opening quote
    std::string out;
    while (true) {
      if (pos_ >= text_.size()) fail("a closing '\"'");
      char c = text_[pos_++];
      if (c == '"') return out;
      if (static_cast<unsigned char>(c) < 0x20) fail("no control characters in strings");
      if (c != '\\') {
        out += c;
        continue;
      }
      if (pos_ >= text_.size()) fail("an escape");
      char e = text_[pos_++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          unsigned cp = parse_hex4();
          if (cp >= 0xD800 && cp < 0xDC00) {
            if (text_.substr(pos_, 2) != "\\u") fail("a low surrogate");
            pos_ += 2;
            unsigned low = parse_hex4();
            if (low < 0xDC00 || low >= 0xE000) fail("a low surrogate");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
          }
          append_utf8(out, cp);
          break;
        }
        default: fail("a valid escape");
      }
    }
  }

  Value parse_number() {
    size_t start = pos_;
    bool integral = true;
    if (text_[pos_] == '-') ++pos_;
    if (pos_ >= text_.size() || !(text_[pos_] >= '0' && text_[pos_] <= '9')) fail("a digit");
    if (text_[pos_] == '0') {
      ++pos_;
    } else {
      while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') ++pos_;
    }
    if (pos_ < text_.size() && text_[pos_] == '.') {
      integral = false;
      ++pos_;
      if (pos_ >= text_.size() || !(text_[pos_] >= '0' && text_[pos_] <= '9')) fail("a digit after '.'");
      while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') ++pos_;
    }
    if (pos_ < text_.size() && (text_[pos_] == 'e' || text_[pos_] == 'E')) {
      integral = false;
      ++pos_;
      if (pos_ < text_.size() && (text_[pos_] == '+' || text_[pos_] == '-')) ++pos_;
      if (pos_ >= text_.size() || !(text_[pos_] >= '0' && text_[pos_] <= '9')) fail("an exponent digit");
      while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') ++pos_;
    }
    std::string token(text_.substr(start, pos_ - start));
    if (integral) {
      errno = 0;
      char* end = nullptr;
      long long v = std::strtoll(token.c_str(), &end, 10);
      if (errno == 0 && end == token.c_str() + token.size()) return Value(static_cast<int64_t>(v));
    }
    return Value(std::strtod(token.c_str(), nullptr));
  }

  std::string_view text_;
  size_t pos_ = 0;
};

void dump_string(std::string& out, const std::string& s) {
  out += '"';
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(static_cast<unsigned char>(c)));
          out += buf;
        } else {
          out += c;
        }
    }
  }
  out += '"';
}

void dump_value(std::string& out, const Value& v) {
  if (v.is_null()) {
    out += "null";
  } else if (v.is_bool()) {
    out += v.as_bool() ? "true" : "false";
  } else if (v.is_int()) {
    out += std::to_string(v.as_int());
  } else if (v.is_number()) {
    double d = v.as_double();
    // JSON has no NaN or Inf; a diverged loss in a log is still worth writing, as as_double reads it.
    if (!std::isfinite(d)) {
      dump_string(out, std::isnan(d) ? "nan" : d > 0 ? "inf" : "-inf");
    } else if (d == 0 && std::signbit(d)) {
      out += "-0.0";  // "%.17g" writes "-0", which reads back as the integer 0
    } else {
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.17g", d);
      out += buf;
    }
  } else if (v.is_string()) {
    dump_string(out, v.as_string());
  } else if (v.is_array()) {
    out += '[';
    bool first = true;
    for (const Value& item : v.as_array()) {
      if (!first) out += ',';
      first = false;
      dump_value(out, item);
    }
    out += ']';
  } else {
    out += '{';
    bool first = true;
    for (const auto& [key, item] : v.as_object()) {
      if (!first) out += ',';
      first = false;
      dump_string(out, key);
      out += ':';
      dump_value(out, item);
    }
    out += '}';
  }
}

}  // namespace

Value parse(std::string_view text) { return Parser(text).parse_document(); }

std::string dump(const Value& value) {
  std::string out;
  dump_value(out, value);
  return out;
}

}  // namespace strata::json
