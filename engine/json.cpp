// JSON (RFC 8259) for the small documents strata reads and writes, on nlohmann-json (Debian's
// nlohmann-json3-dev): its SAX parser fills our Value, its writer writes it.
#include "engine/json.h"

#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

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

constexpr size_t kMaxDepth = 64;

// nlohmann's SAX events (its json_sax interface) build a Value directly: no intermediate document,
// containers no deeper than kMaxDepth (a hostile header cannot exhaust the stack of the recursive
// writer and destructor), integers kept as int64 when they fit.
class Builder {
 public:
  bool null() { return add(Value()); }
  bool boolean(bool b) { return add(Value(b)); }
  bool number_integer(int64_t v) { return add(Value(v)); }
  bool number_unsigned(uint64_t v) {
    if (v <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return add(Value(static_cast<int64_t>(v)));
    return add(Value(static_cast<double>(v)));
  }
  bool number_float(double v, const std::string&) { return add(Value(v)); }
  bool string(std::string& s) { return add(Value(std::move(s))); }
  bool binary(nlohmann::json::binary_t&) { return false; }  // JSON text has no binary values
  bool start_object(size_t) { return open(Value(Object{})); }
  bool key(std::string& k) {
    keys_.back() = std::move(k);
    return true;
  }
  bool end_object() { return close(); }
  bool start_array(size_t) { return open(Value(Array{})); }
  bool end_array() { return close(); }
  bool parse_error(size_t position, const std::string&, const nlohmann::json::exception& e) {
    // "[json.exception.parse_error.101] parse error at line 1, column 6: syntax error while ...":
    // the reason, located by byte instead of line and column.
    std::string what = e.what();
    if (const size_t id = what.find("] "); what.rfind("[json.exception.", 0) == 0 && id != std::string::npos) {
      what = what.substr(id + 2);
    }
    if (const size_t at = what.find(": "); what.rfind("parse error", 0) == 0 && at != std::string::npos) {
      what = what.substr(at + 2);
    }
    throw Error(cat("json: at byte ", position, ": ", what));
  }

  Value result() { return std::move(result_); }

 private:
  bool open(Value container) {
    if (stack_.size() >= kMaxDepth) {
      throw Error(cat("json: containers nested deeper than ", kMaxDepth, " levels: expected less nesting"));
    }
    stack_.push_back(std::move(container));
    keys_.emplace_back();
    return true;
  }
  bool close() {
    Value done = std::move(stack_.back());
    stack_.pop_back();
    keys_.pop_back();
    return add(std::move(done));
  }
  bool add(Value v) {
    if (stack_.empty()) {
      result_ = std::move(v);
    } else if (stack_.back().is_array()) {
      stack_.back().as_array().push_back(std::move(v));
    } else {
      stack_.back().as_object().emplace_back(std::move(keys_.back()), std::move(v));
    }
    return true;
  }

  std::vector<Value> stack_;
  std::vector<std::string> keys_;
  Value result_;
};

nlohmann::ordered_json to_library(const Value& v) {
  if (v.is_null()) return nullptr;
  if (v.is_bool()) return v.as_bool();
  if (v.is_int()) return v.as_int();
  if (v.is_number()) {
    // JSON has no NaN or Inf; a diverged loss in a log is still worth writing, as as_double reads it.
    const double d = v.as_double();
    if (!std::isfinite(d)) return std::isnan(d) ? "nan" : d > 0 ? "inf" : "-inf";
    return d;
  }
  if (v.is_string()) return v.as_string();
  if (v.is_array()) {
    nlohmann::ordered_json out = nlohmann::ordered_json::array();
    for (const Value& item : v.as_array()) out.push_back(to_library(item));
    return out;
  }
  nlohmann::ordered_json out = nlohmann::ordered_json::object();
  // Object members keep their order; a repeated key (which parse() keeps) writes its last value,
  // as readers of JSON take it.
  for (const auto& [key, item] : v.as_object()) out[key] = to_library(item);
  return out;
}

}  // namespace

Value parse(std::string_view text) {
  Builder builder;
  try {
    nlohmann::json::sax_parse(text, &builder, nlohmann::json::input_format_t::json, true, false);
  } catch (const nlohmann::json::exception& e) {
    throw Error(cat("json: ", e.what()));
  }
  return builder.result();
}

std::string dump(const Value& value) {
  // Invalid UTF-8 (a file name in another encoding) is written as U+FFFD instead of refusing the
  // whole record.
  return to_library(value).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace strata::json
