// UTC timestamps in the wire format, and a clock that tests can replace.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace rayvault::util {

using SystemTime = std::chrono::system_clock::time_point;

// A source of "now"; the default reads the system clock.
using Clock = std::function<SystemTime()>;
Clock system_clock();

// Formats as YYYY-MM-DDTHH:MM:SSZ (seconds precision, UTC).
std::string format_utc(SystemTime t);
// The system clock's now, formatted so.
std::string now_utc();

// Parses ISO-8601 date-times: 'T' or ' ' separator, optional fractional seconds, and 'Z', an
// offset (+HH:MM, +HHMM, +HH) or nothing (read as UTC). Empty optional when unreadable.
std::optional<SystemTime> parse_iso8601(std::string_view text);

// Milliseconds between two instants (b - a).
long long millis_between(SystemTime a, SystemTime b);

}  // namespace rayvault::util
