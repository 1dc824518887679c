package ai.kiln.cli;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.ToIntFunction;

/**
 * The conversation of {@code kiln chat}: an optional system prompt, then whole turns (a user
 * message and the reply to it), oldest first. The message being answered is not part of it until
 * its reply is added, so a message that could not be sent leaves no trace.
 */
final class ChatHistory {

    /** One exchange: what the user said and what the model replied. */
    record Turn(String user, String assistant) {
    }

    private final String systemPrompt;
    private final List<Turn> turns = new ArrayList<>();

    /** {@code systemPrompt}: the first message of every prompt, or null for none. */
    ChatHistory(String systemPrompt) {
        this.systemPrompt = systemPrompt;
    }

    String systemPrompt() {
        return systemPrompt;
    }

    int turnCount() {
        return turns.size();
    }

    void add(String user, String assistant) {
        turns.add(new Turn(user, assistant));
    }

    /** Forgets every turn; the system prompt stays. */
    void reset() {
        turns.clear();
    }

    void dropOldest(int count) {
        turns.subList(0, count).clear();
    }

    /** The messages of a prompt answering {@code user} after the whole history. */
    List<Map<String, Object>> messagesWith(String user) {
        return messagesWith(0, user);
    }

    /** The messages of a prompt answering {@code user} after the history less its {@code dropped} oldest turns. */
    List<Map<String, Object>> messagesWith(int dropped, String user) {
        List<Map<String, Object>> messages = new ArrayList<>(2 * (turns.size() - dropped) + 2);
        if (systemPrompt != null) {
            messages.add(message("system", systemPrompt));
        }
        for (Turn turn : turns.subList(dropped, turns.size())) {
            messages.add(message("user", turn.user()));
            messages.add(message("assistant", turn.assistant()));
        }
        messages.add(message("user", user));
        return messages;
    }

    /**
     * The fewest oldest turns to drop so that the prompt answering {@code user} takes at most
     * {@code limit} tokens as {@code promptTokens} counts them, or -1 when even the system prompt
     * and {@code user} alone take more.
     */
    int turnsToDrop(String user, ToIntFunction<List<Map<String, Object>>> promptTokens, int limit) {
        for (int dropped = 0; dropped <= turns.size(); dropped++) {
            if (promptTokens.applyAsInt(messagesWith(dropped, user)) <= limit) {
                return dropped;
            }
        }
        return -1;
    }

    static Map<String, Object> message(String role, String content) {
        return Map.of("role", role, "content", content);
    }
}
