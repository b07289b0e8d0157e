// Reference counting of refs on the client side: one hold per object id per
// client, shared by every copy of its ObjectRef; when the last copy goes, the
// id waits here until the client's releaser sends it in a batch.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "ember/value.h"

namespace ember {

struct ObjectRef::Hold {
  std::string id;
  std::weak_ptr<RefTracker> tracker;
  ~Hold();
};

class RefTracker : public std::enable_shared_from_this<RefTracker> {
 public:
  // The ref for an object the session holds (the same hold while a copy lives).
  ObjectRef make(const std::string& id);
  // The ids to release, waiting until there are some or stop(); empty once stopped.
  std::vector<std::string> next_batch();
  // Whatever waits to be released now (for close()).
  std::vector<std::string> take();
  void stop();

 private:
  friend struct ObjectRef::Hold;
  void dropped(const ObjectRef::Hold* hold);

  std::mutex mutex_;
  std::condition_variable wake_;
  std::unordered_map<std::string, std::weak_ptr<const ObjectRef::Hold>> holds_;
  std::vector<std::string> pending_;
  bool stopped_ = false;
};

}  // namespace ember
