/**
 * The protocols by name: the one place that turns the user's `--protocol` into its conversation
 * (conversation.ts). Labs pass their options' protocol on and never look at it themselves.
 */

import { ChatConversation } from './chat.js';
import type { Carrier, Conversation, ConversationContext } from './conversation.js';
import { FilesConversation } from './files.js';
import { EchoConversation, HttpConversation } from './protocol.js';

/** A new connection's protocol side, speaking to `carrier`. Nothing happens until its `start()`. */
export function openConversation(carrier: Carrier, context: ConversationContext): Conversation {
  const config = context.protocol;
  switch (config.protocol) {
    case 'echo':
      return new EchoConversation(carrier);
    case 'http':
      return new HttpConversation(config, carrier);
    case 'files':
      return new FilesConversation(config, carrier);
    case 'chat':
      return new ChatConversation(carrier, context);
  }
}
