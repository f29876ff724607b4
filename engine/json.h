// A small JSON value for safetensors headers, checkpoint metadata and JSONL training logs, read and
// written by nlohmann-json (engine/json.cpp). Integers are kept exactly (int64) when a number has no
// fraction or exponent and fits; other numbers are doubles (written in the shortest form that reads
// back to the same double, with ".0" when integral). Object members keep their insertion order.
// Containers nest at most 64 deep.
//
// JSON has no NaN or Inf: dump() writes a non-finite number as the string "nan", "inf" or "-inf",
// and as_double() reads those three strings back as the numbers (a diverged loss in a log record).
// Strings must be UTF-8: parse() refuses ill-formed UTF-8, dump() writes it as U+FFFD.
//
// parse() throws strata::Error naming the byte offset and what was expected; the accessors throw
// when a value is not of the requested kind.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace strata::json {

class Value;
using Array = std::vector<Value>;
using Object = std::vector<std::pair<std::string, Value>>;

class Value {
 public:
  Value() = default;  // null
  Value(std::nullptr_t) {}
  Value(bool b) : data_(b) {}
  Value(int v) : data_(static_cast<int64_t>(v)) {}
  Value(int64_t v) : data_(v) {}
  Value(uint64_t v) : data_(static_cast<int64_t>(v)) {}
  Value(double v) : data_(v) {}
  Value(const char* s) : data_(std::string(s)) {}
  Value(std::string s) : data_(std::move(s)) {}
  Value(Array a) : data_(std::make_shared<Array>(std::move(a))) {}
  Value(Object o) : data_(std::make_shared<Object>(std::move(o))) {}

  bool is_null() const { return std::holds_alternative<std::monostate>(data_); }
  bool is_bool() const { return std::holds_alternative<bool>(data_); }
  bool is_int() const { return std::holds_alternative<int64_t>(data_); }
  bool is_number() const { return is_int() || std::holds_alternative<double>(data_); }
  bool is_string() const { return std::holds_alternative<std::string>(data_); }
  bool is_array() const { return std::holds_alternative<std::shared_ptr<Array>>(data_); }
  bool is_object() const { return std::holds_alternative<std::shared_ptr<Object>>(data_); }

  bool as_bool() const;
  int64_t as_int() const;
  double as_double() const;
  const std::string& as_string() const;
  const Array& as_array() const;
  const Object& as_object() const;
  Array& as_array();
  Object& as_object();

  // Object member lookup: find() returns nullptr when absent, at() throws naming the key.
  const Value* find(std::string_view key) const;
  const Value& at(std::string_view key) const;

 private:
  std::variant<std::monostate, bool, int64_t, double, std::string, std::shared_ptr<Array>, std::shared_ptr<Object>>
      data_;
};

Value parse(std::string_view text);
std::string dump(const Value& value);  // compact, one line

}  // namespace strata::json
