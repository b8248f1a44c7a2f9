// Wire timestamp formatting and lenient ISO-8601 parsing without locale or time-zone state.
#include "util/time.hpp"

#include <cctype>
#include <cstdio>

namespace rayvault::util {
namespace {

// Days since 1970-01-01 for a proleptic Gregorian date (Howard Hinnant's algorithm).
long long days_from_civil(long long y, unsigned m, unsigned d) {
  y -= m <= 2;
  const long long era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<long long>(doe) - 719468;
}

bool read_digits(std::string_view s, std::size_t& pos, std::size_t n, int& out) {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const char c = s[pos + i];
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
    v = v * 10 + (c - '0');
  }
  pos += n;
  out = v;
  return true;
}

}  // namespace

Clock system_clock() {
  return [] { return std::chrono::system_clock::now(); };
}

std::string now_utc() { return format_utc(std::chrono::system_clock::now()); }

std::string format_utc(SystemTime t) {
  const auto secs = std::chrono::floor<std::chrono::seconds>(t);
  const auto days = std::chrono::floor<std::chrono::days>(secs);
  const std::chrono::year_month_day ymd{days};
  const std::chrono::hh_mm_ss hms{secs - days};
  char buf[32];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02dZ", static_cast<int>(ymd.year()),
                static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                static_cast<int>(hms.hours().count()), static_cast<int>(hms.minutes().count()),
                static_cast<int>(hms.seconds().count()));
  return buf;
}

std::optional<SystemTime> parse_iso8601(std::string_view s) {
  std::size_t pos = 0;
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  if (!read_digits(s, pos, 4, year)) return std::nullopt;
  if (pos >= s.size() || s[pos++] != '-') return std::nullopt;
  if (!read_digits(s, pos, 2, month)) return std::nullopt;
  if (pos >= s.size() || s[pos++] != '-') return std::nullopt;
  if (!read_digits(s, pos, 2, day)) return std::nullopt;
  if (pos >= s.size() || (s[pos] != 'T' && s[pos] != 't' && s[pos] != ' ')) return std::nullopt;
  ++pos;
  if (!read_digits(s, pos, 2, hour)) return std::nullopt;
  if (pos >= s.size() || s[pos++] != ':') return std::nullopt;
  if (!read_digits(s, pos, 2, minute)) return std::nullopt;
  if (pos >= s.size() || s[pos++] != ':') return std::nullopt;
  if (!read_digits(s, pos, 2, second)) return std::nullopt;
  long long micros = 0;
  if (pos < s.size() && (s[pos] == '.' || s[pos] == ',')) {
    ++pos;
    std::size_t ndigits = 0;
    long long scale = 100000;
    while (pos < s.size() && std::isdigit(static_cast<unsigned char>(s[pos]))) {
      if (ndigits < 6) micros += (s[pos] - '0') * scale;
      scale /= 10;
      ++ndigits;
      ++pos;
    }
    if (ndigits == 0) return std::nullopt;
  }
  long long offset_sec = 0;
  if (pos < s.size()) {
    const char c = s[pos];
    if ((c == 'Z' || c == 'z') && pos + 1 == s.size()) {
      ++pos;
    } else if (c == '+' || c == '-') {
      ++pos;
      int oh = 0, om = 0;
      if (!read_digits(s, pos, 2, oh)) return std::nullopt;
      if (pos < s.size() && s[pos] == ':') ++pos;
      if (pos < s.size() && !read_digits(s, pos, 2, om)) return std::nullopt;
      if (oh > 23 || om > 59) return std::nullopt;
      offset_sec = (oh * 3600LL + om * 60LL) * (c == '+' ? 1 : -1);
    } else {
      return std::nullopt;
    }
  }
  if (pos != s.size()) return std::nullopt;
  if (month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 59)
    return std::nullopt;
  const std::chrono::year_month_day ymd{std::chrono::year{year},
                                        std::chrono::month{static_cast<unsigned>(month)},
                                        std::chrono::day{static_cast<unsigned>(day)}};
  if (!ymd.ok()) return std::nullopt;
  const long long days = days_from_civil(year, static_cast<unsigned>(month), static_cast<unsigned>(day));
  const long long total = days * 86400LL + hour * 3600LL + minute * 60LL + second - offset_sec;
  return SystemTime{std::chrono::seconds{total}} + std::chrono::microseconds{micros};
}

long long millis_between(SystemTime a, SystemTime b) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(b - a).count();
}

}  // namespace rayvault::util
