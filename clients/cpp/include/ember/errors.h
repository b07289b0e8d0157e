// What the client throws. Every error is an ember::Error (a
// std::runtime_error); catch the kinds below to tell them apart.
#pragma once

#include <stdexcept>
#include <string>

namespace ember {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The cluster refused a request (bad input, unknown ref or actor, wrong
// token, ...): the gRPC status code and the server's message, which says what
// to fix. The client goes on serving.
class RequestError : public Error {
 public:
  // Codes as grpc::StatusCode: 3 INVALID_ARGUMENT, 5 NOT_FOUND, 16 UNAUTHENTICATED, ...
  RequestError(int code, const std::string& code_name, const std::string& details)
      : Error(code_name + ": " + details), code_(code), details_(details) {}
  int code() const { return code_; }
  const std::string& details() const { return details_; }

 private:
  int code_;
  std::string details_;
};

// get() with a timeout: not every object was ready in time.
class GetTimeoutError : public RequestError {
 public:
  using RequestError::RequestError;
};

// The work failed: the Python code raised (kind Code: `type` is the
// exception's class name, `traceback` the Python traceback), or the runtime
// failed it (kind System: WorkerCrashedError, ActorDiedError, ...).
class RemoteError : public Error {
 public:
  enum class Kind { Code, System };
  RemoteError(Kind kind, std::string type, std::string message, std::string traceback, std::string function)
      : Error(type + ": " + message + (function.empty() ? "" : " (in " + function + ")")),
        kind_(kind), type_(std::move(type)), message_(std::move(message)), traceback_(std::move(traceback)),
        function_(std::move(function)) {}
  Kind kind() const { return kind_; }
  const std::string& type() const { return type_; }
  const std::string& message() const { return message_; }
  const std::string& traceback() const { return traceback_; }
  const std::string& function() const { return function_; }

 private:
  Kind kind_;
  std::string type_, message_, traceback_, function_;
};

// A value has no neutral encoding (sent), or a document is not a valid one (received).
class EncodeError : public Error {
 public:
  using Error::Error;
};
class DecodeError : public Error {
 public:
  using Error::Error;
};

// A Value read as a type it is not (as_int() of a string, ...), or a missing map key.
class TypeMismatch : public Error {
 public:
  using Error::Error;
};

// The client is closed, or its session with the cluster was lost.
class SessionError : public Error {
 public:
  using Error::Error;
};

}  // namespace ember
