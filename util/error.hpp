// The one error type of RayVault cluster: a kind (mapped to HTTP status and exit code in
// protocol/errors.hpp), a human message and, for step failures, the wire error_code.
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace rayvault {

enum class ErrorKind {
  invalid_input,   // malformed or hostile input from a caller (HTTP 400, exit 2)
  unauthorized,    // envelope or token check failed (HTTP 401)
  forbidden,       // authenticated but not allowed (HTTP 403)
  conflict,        // the request does not fit the resource's state, e.g. cancel a finished job (HTTP 409)
  not_found,       // no such job, artifact or node (HTTP 404)
  too_large,       // body or file over its limit (HTTP 413)
  range,           // unsatisfiable byte range (HTTP 416)
  unavailable,     // a peer, tool or resource cannot be reached now (HTTP 503)
  config,          // bad configuration file, flags or environment (exit 3)
  io,              // a local file or database operation failed (HTTP 500)
  storage_full,    // no room for what is sent, even after making room (HTTP 507, exit 4)
  internal,        // a state that should not happen (HTTP 500)
};

struct Error {
  ErrorKind kind = ErrorKind::internal;
  std::string message;
  std::string code;  // wire error_code (INVALID_INPUT, ...) when the error ends a job step

  Error() = default;
  Error(ErrorKind k, std::string msg, std::string c = {})
      : kind(k), message(std::move(msg)), code(std::move(c)) {}
};

// Result of an operation that fails in expected ways: a value or an Error.
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}          // NOLINT(google-explicit-constructor)
  Result(Error error) : v_(std::move(error)) {}      // NOLINT(google-explicit-constructor)
  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &std::get<0>(v_); }
  const T* operator->() const { return &std::get<0>(v_); }
  T& operator*() & { return std::get<0>(v_); }
  const T& operator*() const& { return std::get<0>(v_); }
  T&& operator*() && { return std::get<0>(std::move(v_)); }
  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

struct Ok {};
using Status = Result<Ok>;

inline Status ok_status() { return Ok{}; }

}  // namespace rayvault
