// Point-to-point text messages between the ranks of one group, for control traffic that
// is not collective (a coordinator handing out work to whichever rank asks first).
//
// Contract: a message sent to rank d with tag t is received by a Receive of rank d with
// tag t, in the order it was sent from one sender; tags keep apart two receivers on one
// rank (a coordinator thread and the rank's own main thread). Send and Receive may be
// called from any thread; one receiver per (rank, tag).
#pragma once

#include <chrono>
#include <string>

namespace slim::comm {

struct Message {
  int source = 0;  // the sender's rank in the group
  std::string text;
};

class MessagePort {
 public:
  virtual ~MessagePort() = default;

  // This process's rank in the group and the group's size.
  virtual int Rank() const = 0;
  virtual int Size() const = 0;

  // Sends `text` to `destination`; returns once the text may be reused (it may not have
  // been received yet). Throws CommError when the transport fails.
  virtual void Send(int destination, int tag, const std::string& text) = 0;

  // The next message with `tag` from any rank. Throws CommError naming the tag when none
  // arrived within `timeout`.
  virtual Message Receive(int tag, std::chrono::milliseconds timeout) = 0;
};

}  // namespace slim::comm
