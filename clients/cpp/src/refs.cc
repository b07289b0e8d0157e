#include "refs.h"

namespace ember {

ObjectRef::Hold::~Hold() {
  if (auto t = tracker.lock()) t->dropped(this);
}

ObjectRef RefTracker::make(const std::string& id) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto& slot = holds_[id];
  if (auto alive = slot.lock()) return ObjectRef(alive);
  auto hold = std::make_shared<ObjectRef::Hold>();
  hold->id = id;
  hold->tracker = weak_from_this();
  slot = hold;
  return ObjectRef(std::shared_ptr<const ObjectRef::Hold>(std::move(hold)));
}

void RefTracker::dropped(const ObjectRef::Hold* hold) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = holds_.find(hold->id);
  // (a new hold for the same id may have been made since this one expired: it holds the object now)
  if (it == holds_.end() || !it->second.expired()) return;
  holds_.erase(it);
  if (stopped_) return;
  pending_.push_back(hold->id);
  wake_.notify_one();
}

std::vector<std::string> RefTracker::next_batch() {
  std::unique_lock<std::mutex> lock(mutex_);
  wake_.wait(lock, [this] { return stopped_ || !pending_.empty(); });
  std::vector<std::string> out;
  out.swap(pending_);
  return out;
}

std::vector<std::string> RefTracker::take() {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<std::string> out;
  out.swap(pending_);
  return out;
}

void RefTracker::stop() {
  std::lock_guard<std::mutex> lock(mutex_);
  stopped_ = true;
  wake_.notify_all();
}

}  // namespace ember
