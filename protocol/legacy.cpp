// Python str() rendering and the v0.5 HMAC.
#include "protocol/legacy.hpp"

#include <algorithm>
#include <cstdio>
#include <map>
#include <vector>

#include "protocol/steps.hpp"
#include "util/crypto.hpp"
#include "util/strings.hpp"

namespace rayvault::protocol::legacy {
namespace {

// Decodes one UTF-8 code point at s[i]; the parser has already validated the text.
char32_t next_code_point(const std::string& s, std::size_t& i) {
  const auto c = static_cast<unsigned char>(s[i]);
  int extra = 0;
  char32_t cp = c;
  if (c >= 0xF0) { cp = c & 0x07; extra = 3; }
  else if (c >= 0xE0) { cp = c & 0x0F; extra = 2; }
  else if (c >= 0xC0) { cp = c & 0x1F; extra = 1; }
  ++i;
  for (int k = 0; k < extra && i < s.size(); ++k, ++i) cp = (cp << 6) | (static_cast<unsigned char>(s[i]) & 0x3F);
  return cp;
}

// Code points Python's str.isprintable() rejects, beyond ASCII: categories Cc, Cf, Zs (but
// space), Zl, Zp, Co. Ranges are inclusive.
bool python_printable(char32_t cp) {
  static const std::pair<char32_t, char32_t> kNonPrintable[] = {
      {0x80, 0xA0},     {0xAD, 0xAD},     {0x600, 0x605},   {0x61C, 0x61C},   {0x6DD, 0x6DD},
      {0x70F, 0x70F},   {0x890, 0x891},   {0x8E2, 0x8E2},   {0x1680, 0x1680}, {0x180E, 0x180E},
      {0x2000, 0x200F}, {0x2028, 0x202F}, {0x205F, 0x2064}, {0x2066, 0x206F}, {0x3000, 0x3000},
      {0xD800, 0xF8FF}, {0xFEFF, 0xFEFF}, {0xFFF9, 0xFFFB}, {0x110BD, 0x110BD}, {0x110CD, 0x110CD},
      {0x13430, 0x1343F}, {0x1BCA0, 0x1BCA3}, {0x1D173, 0x1D17A}, {0xE0001, 0xE0001},
      {0xE0020, 0xE007F}, {0xF0000, 0x10FFFF}};
  for (const auto& [lo, hi] : kNonPrintable)
    if (cp >= lo && cp <= hi) return false;
  return true;
}

std::string repr_string(const std::string& s) {
  const bool has_single = s.find('\'') != std::string::npos;
  const bool has_double = s.find('"') != std::string::npos;
  const char quote = (has_single && !has_double) ? '"' : '\'';
  std::string out(1, quote);
  for (std::size_t i = 0; i < s.size();) {
    const char32_t cp = next_code_point(s, i);
    char buf[16];
    if (cp == static_cast<char32_t>(quote) || cp == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(cp));
    } else if (cp == '\t') {
      out += "\\t";
    } else if (cp == '\n') {
      out += "\\n";
    } else if (cp == '\r') {
      out += "\\r";
    } else if (cp < 0x20 || cp == 0x7F) {
      std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned>(cp));
      out += buf;
    } else if (cp < 0x7F) {
      out.push_back(static_cast<char>(cp));
    } else if (python_printable(cp)) {
      // Re-encode as UTF-8.
      if (cp < 0x800) {
        out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
      } else if (cp < 0x10000) {
        out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
      } else {
        out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
      }
    } else if (cp <= 0xFF) {
      std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned>(cp));
      out += buf;
    } else if (cp <= 0xFFFF) {
      std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(cp));
      out += buf;
    } else {
      std::snprintf(buf, sizeof buf, "\\U%08x", static_cast<unsigned>(cp));
      out += buf;
    }
  }
  out.push_back(quote);
  return out;
}

void write_python(std::string& out, const ordered_json& v) {
  switch (v.type()) {
    case ordered_json::value_t::null: out += "None"; break;
    case ordered_json::value_t::boolean: out += v.get<bool>() ? "True" : "False"; break;
    case ordered_json::value_t::number_integer: out += std::to_string(v.get<std::int64_t>()); break;
    case ordered_json::value_t::number_unsigned: out += std::to_string(v.get<std::uint64_t>()); break;
    case ordered_json::value_t::number_float: {
      const double d = v.get<double>();
      if (std::isnan(d)) out += "nan";
      else if (std::isinf(d)) out += d > 0 ? "inf" : "-inf";
      else out += python_float_repr(d);
      break;
    }
    case ordered_json::value_t::string: out += repr_string(v.get_ref<const std::string&>()); break;
    case ordered_json::value_t::binary: {
      const auto& bin = v.get_binary();
      out.append(bin.begin(), bin.end());
      break;
    }
    case ordered_json::value_t::array: {
      out.push_back('[');
      bool first = true;
      for (const auto& item : v) {
        if (!first) out += ", ";
        first = false;
        write_python(out, item);
      }
      out.push_back(']');
      break;
    }
    case ordered_json::value_t::object: {
      out.push_back('{');
      bool first = true;
      for (const auto& [key, item] : v.items()) {
        if (!first) out += ", ";
        first = false;
        out += repr_string(key);
        out += ": ";
        write_python(out, item);
      }
      out.push_back('}');
      break;
    }
    case ordered_json::value_t::discarded: break;
  }
}

}  // namespace

std::string python_str(const ordered_json& value) {
  std::string out;
  write_python(out, value);
  return out;
}

std::string signing_message(const ordered_json& body) {
  std::map<std::string, const ordered_json*> sorted;
  for (const auto& [key, item] : body.items())
    if (key != "auth_token") sorted.emplace(key, &item);
  std::string message;
  bool first = true;
  for (const auto& [key, item] : sorted) {
    if (!first) message.push_back('|');
    first = false;
    message += item->is_string() ? item->get<std::string>() : python_str(*item);
  }
  return message;
}

void sign(ordered_json& body, std::string_view secret) {
  body["auth_token"] = util::hmac_sha256_hex(secret, signing_message(body));
}

ordered_json caps_body(std::string_view run_id, std::string_view node_id) {
  ordered_json body = ordered_json::object();
  body["run_id"] = std::string(run_id);
  body["job_id"] = "caps-" + std::string(node_id);
  body["step_name"] = "register_caps";
  body["job_type"] = "caps";
  body["controller"] = "rayvault";
  return body;
}

ordered_json job_body(std::string_view run_id, std::string_view job_id, std::string_view step,
                      const ordered_json& payload) {
  ordered_json body = ordered_json::object();
  body["run_id"] = std::string(run_id);
  body["job_id"] = std::string(job_id);
  body["step_name"] = util::ascii_lower(steps::normalize(step));
  body["job_type"] = steps::legacy_job_type(step);
  body["params"] = payload;
  return body;
}

}  // namespace rayvault::protocol::legacy
