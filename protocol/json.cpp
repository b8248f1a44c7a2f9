// Canonical JSON writer and a parser that keeps big integers exact (see json.hpp).
#include "protocol/json.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <vector>

#include "util/crypto.hpp"

namespace rayvault::protocol {
namespace {

bool is_integer_literal(const std::string& s) {
  std::size_t i = (!s.empty() && s[0] == '-') ? 1 : 0;
  if (i >= s.size()) return false;
  for (; i < s.size(); ++i)
    if (s[i] < '0' || s[i] > '9') return false;
  return true;
}

// SAX handler: the library's DOM builder, except that integer literals too big for 64 bits are
// stored as exact digits and nesting depth is bounded.
template <class BasicJson>
class ExactSax {
 public:
  explicit ExactSax(BasicJson& root) : dom_(root, false) {}
  using number_integer_t = typename BasicJson::number_integer_t;
  using number_unsigned_t = typename BasicJson::number_unsigned_t;
  using number_float_t = typename BasicJson::number_float_t;
  using string_t = typename BasicJson::string_t;
  using binary_t = typename BasicJson::binary_t;

  bool null() { return dom_.null(); }
  bool boolean(bool v) { return dom_.boolean(v); }
  bool number_integer(number_integer_t v) { return dom_.number_integer(v); }
  bool number_unsigned(number_unsigned_t v) { return dom_.number_unsigned(v); }
  bool number_float(number_float_t v, const string_t& text) {
    if (is_integer_literal(text)) {
      std::string digits = text;
      if (digits == "-0") digits = "0";
      binary_t bin(std::vector<std::uint8_t>(digits.begin(), digits.end()), kBigIntSubtype);
      return dom_.binary(bin);
    }
    if (!std::isfinite(v)) {
      error_ = "number out of range: " + text.substr(0, 40);
      return false;
    }
    return dom_.number_float(v, text);
  }
  bool string(string_t& v) {
    // A string value that quote_long_integers made of an integer literal is that integer again.
    if (next_quoted_ < quoted_.size() && quoted_[next_quoted_] == string_values_++) {
      ++next_quoted_;
      binary_t bin(std::vector<std::uint8_t>(v.begin(), v.end()), kBigIntSubtype);
      return dom_.binary(bin);
    }
    return dom_.string(v);
  }
  // The ordinals (among string values, in document order) of quoted integer literals.
  void set_quoted(std::vector<std::size_t> quoted) { quoted_ = std::move(quoted); }
  bool binary(binary_t& v) { return dom_.binary(v); }
  bool start_object(std::size_t n) { return enter() && dom_.start_object(n); }
  bool key(string_t& k) { return dom_.key(k); }
  bool end_object() { --depth_; return dom_.end_object(); }
  bool start_array(std::size_t n) { return enter() && dom_.start_array(n); }
  bool end_array() { --depth_; return dom_.end_array(); }
  bool parse_error(std::size_t pos, const std::string&, const nlohmann::detail::exception& ex) {
    error_ = "malformed JSON at byte " + std::to_string(pos) + ": " + ex.what();
    return false;
  }
  const std::string& error() const { return error_; }

 private:
  bool enter() {
    if (++depth_ > kMaxJsonDepth) {
      error_ = "JSON nested deeper than " + std::to_string(kMaxJsonDepth) + " levels";
      return false;
    }
    return true;
  }
  nlohmann::detail::json_sax_dom_parser<BasicJson> dom_;
  std::size_t depth_ = 0;
  std::string error_;
  std::vector<std::size_t> quoted_;
  std::size_t next_quoted_ = 0, string_values_ = 0;
};

// Integers of more than 308 digits overflow a double, and the library refuses them before any
// handler sees them; Python reads integers up to 4300 digits. Such literals are rewritten as
// string values here, and the ordinal of each among string values recorded, so the handler turns
// exactly those back into integers. Error for an integer over 4300 digits, as Python's limit.
constexpr std::size_t kQuoteDigits = 300, kMaxIntegerDigits = 4300;

Result<std::string> quote_long_integers(std::string_view text, std::vector<std::size_t>& quoted) {
  std::string out;
  out.reserve(text.size() + 16);
  std::size_t values = 0;
  for (std::size_t i = 0; i < text.size();) {
    const char c = text[i];
    if (c == '"') {  // copy the string, then tell a key (followed by ':') from a value
      const std::size_t start = i++;
      while (i < text.size() && text[i] != '"') i += text[i] == '\\' ? 2 : 1;
      i = std::min(i + 1, text.size());
      out.append(text.substr(start, i - start));
      std::size_t j = i;
      while (j < text.size() && (text[j] == ' ' || text[j] == '\t' || text[j] == '\n' || text[j] == '\r')) ++j;
      if (j >= text.size() || text[j] != ':') ++values;
      continue;
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
      std::size_t j = i;
      while (j < text.size() && (text[j] == '-' || text[j] == '+' || text[j] == '.' || text[j] == 'e' ||
                                 text[j] == 'E' || (text[j] >= '0' && text[j] <= '9')))
        ++j;
      const std::string token(text.substr(i, j - i));
      if (is_integer_literal(token) && token.size() > kQuoteDigits) {
        if (token.size() - (token[0] == '-') > kMaxIntegerDigits)
          return Error(ErrorKind::invalid_input, "integer of more than 4300 digits (Python's limit)");
        quoted.push_back(values++);
        out += '"' + token + '"';
      } else {
        out += token;
      }
      i = j;
      continue;
    }
    out.push_back(c);
    ++i;
  }
  return out;
}

bool has_long_digit_run(std::string_view text) {
  std::size_t run = 0;
  for (const char c : text) {
    run = (c >= '0' && c <= '9') ? run + 1 : 0;
    if (run > kQuoteDigits) return true;
  }
  return false;
}

template <class BasicJson>
Result<BasicJson> parse_exact(std::string_view text) {
  BasicJson root;
  ExactSax<BasicJson> sax(root);
  std::string rewritten;
  if (has_long_digit_run(text)) {
    std::vector<std::size_t> quoted;
    auto r = quote_long_integers(text, quoted);
    if (!r) return r.error();
    rewritten = std::move(r).value();
    text = rewritten;
    sax.set_quoted(std::move(quoted));
  }
  bool ok = false;
  try {
    ok = BasicJson::sax_parse(text.begin(), text.end(), &sax);
  } catch (const std::exception& ex) {
    return Error(ErrorKind::invalid_input, std::string("malformed JSON: ") + ex.what());
  }
  if (!ok) return Error(ErrorKind::invalid_input, sax.error().empty() ? "malformed JSON" : sax.error());
  return root;
}

struct TextStyle {
  const char* item_separator;
  const char* key_separator;
  bool ensure_ascii;  // non-ASCII as \uXXXX (surrogate pairs beyond the BMP), as json.dumps does
};
constexpr TextStyle kCanonical{",", ":", false};
constexpr TextStyle kPythonDumps{", ", ": ", true};

// Decodes one UTF-8 sequence at s[i]; advances i. Invalid bytes read as U+FFFD.
char32_t next_code_point(const std::string& s, std::size_t& i) {
  const auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = b(i);
  int len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
  if (c >= 0x80 && c < 0xC0) len = 0;
  if (len == 0 || i + static_cast<std::size_t>(len) > s.size()) {
    ++i;
    return 0xFFFD;
  }
  char32_t cp = len == 1 ? c : len == 2 ? (c & 0x1Fu) : len == 3 ? (c & 0x0Fu) : (c & 0x07u);
  for (int k = 1; k < len; ++k) {
    if ((b(i + static_cast<std::size_t>(k)) & 0xC0) != 0x80) {
      ++i;
      return 0xFFFD;
    }
    cp = (cp << 6) | (b(i + static_cast<std::size_t>(k)) & 0x3Fu);
  }
  i += static_cast<std::size_t>(len);
  return cp;
}

void write_string(std::string& out, const std::string& s, const TextStyle& style = kCanonical) {
  out.push_back('"');
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80 && style.ensure_ascii) {
      const char32_t cp = next_code_point(s, i);
      char buf[16];
      if (cp >= 0x10000) {
        const char32_t v = cp - 0x10000;
        std::snprintf(buf, sizeof buf, "\\u%04x\\u%04x", static_cast<unsigned>(0xD800 + (v >> 10)),
                      static_cast<unsigned>(0xDC00 + (v & 0x3FF)));
      } else {
        std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(cp));
      }
      out += buf;
      continue;
    }
    ++i;
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20 || (c == 0x7F && style.ensure_ascii)) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  out.push_back('"');
}

void write_canonical(std::string& out, const json& v, const TextStyle& style = kCanonical) {
  switch (v.type()) {
    case json::value_t::null: out += "null"; break;
    case json::value_t::boolean: out += v.get<bool>() ? "true" : "false"; break;
    case json::value_t::number_integer: out += std::to_string(v.get<std::int64_t>()); break;
    case json::value_t::number_unsigned: out += std::to_string(v.get<std::uint64_t>()); break;
    case json::value_t::number_float: out += python_float_repr(v.get<double>()); break;
    case json::value_t::string: write_string(out, v.get_ref<const std::string&>(), style); break;
    case json::value_t::binary: {
      const auto& bin = v.get_binary();
      out.append(bin.begin(), bin.end());
      break;
    }
    case json::value_t::array: {
      out.push_back('[');
      bool first = true;
      for (const auto& item : v) {
        if (!first) out += style.item_separator;
        first = false;
        write_canonical(out, item, style);
      }
      out.push_back(']');
      break;
    }
    case json::value_t::object: {
      // nlohmann's object_t is a std::map<std::string, ...>; std::string orders as unsigned
      // bytes, and UTF-8 byte order is code point order.
      out.push_back('{');
      bool first = true;
      for (const auto& [key, item] : v.items()) {
        if (!first) out += style.item_separator;
        first = false;
        write_string(out, key, style);
        out += style.key_separator;
        write_canonical(out, item, style);
      }
      out.push_back('}');
      break;
    }
    case json::value_t::discarded: break;
  }
}

}  // namespace

Result<json> parse_json(std::string_view text) { return parse_exact<json>(text); }
Result<ordered_json> parse_json_ordered(std::string_view text) { return parse_exact<ordered_json>(text); }

std::string python_float_repr(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "Infinity" : "-Infinity";
  char buf[64];
  const auto res = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific);
  std::string sci(buf, res.ptr);
  std::string sign;
  if (!sci.empty() && sci[0] == '-') {
    sign = "-";
    sci.erase(0, 1);
  }
  const auto epos = sci.find('e');
  std::string mantissa = sci.substr(0, epos);
  const int exp10 = std::stoi(sci.substr(epos + 1));
  std::string digits;
  for (const char c : mantissa)
    if (c != '.') digits.push_back(c);
  const int ndigits = static_cast<int>(digits.size());
  const int decpt = exp10 + 1;  // position of the decimal point relative to the digits
  std::string out = sign;
  if (decpt <= -4 || decpt > 16) {
    out += digits.substr(0, 1);
    if (ndigits > 1) out += "." + digits.substr(1);
    char ebuf[16];
    std::snprintf(ebuf, sizeof ebuf, "e%c%02d", exp10 < 0 ? '-' : '+', exp10 < 0 ? -exp10 : exp10);
    out += ebuf;
  } else if (decpt <= 0) {
    out += "0." + std::string(static_cast<std::size_t>(-decpt), '0') + digits;
  } else if (decpt >= ndigits) {
    out += digits + std::string(static_cast<std::size_t>(decpt - ndigits), '0') + ".0";
  } else {
    out += digits.substr(0, static_cast<std::size_t>(decpt)) + "." + digits.substr(static_cast<std::size_t>(decpt));
  }
  return out;
}

std::string dump_json(const json& value, int indent) {
  return value.dump(indent, ' ', false, json::error_handler_t::replace);
}

std::string canonical_json(const json& value) {
  std::string out;
  write_canonical(out, value);
  return out;
}

void append_canonical_string(std::string& out, const std::string& text) { write_string(out, text); }

std::string python_json_dumps(const json& value) {
  std::string out;
  write_canonical(out, value, kPythonDumps);
  return out;
}

std::string inputs_hash(const json& payload) { return util::sha256_hex(canonical_json(payload)); }

std::string string_field(const json& j, std::string_view key) {
  if (!j.is_object()) return {};
  const auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace rayvault::protocol
