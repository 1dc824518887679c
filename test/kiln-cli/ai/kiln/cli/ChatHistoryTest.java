package ai.kiln.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.List;
import java.util.Map;
import java.util.function.ToIntFunction;
import org.junit.jupiter.api.Test;

/**
 * The conversation's messages (the system prompt first, whole turns, the new message last), and
 * which oldest turns go when the prompt outgrows its limit.
 */
class ChatHistoryTest {

    /** Counts a prompt as one token per character of its contents, so that the limits are easy to follow. */
    static final ToIntFunction<List<Map<String, Object>>> CHARACTERS = messages -> messages.stream()
            .mapToInt(m -> ((String) m.get("content")).length()).sum();

    @Test
    void messagesAreTheSystemPromptTheTurnsAndTheNewMessage() {
        ChatHistory history = new ChatHistory("sys");
        history.add("u1", "a1");
        history.add("u2", "a2");

        assertEquals(List.of(ChatHistory.message("system", "sys"), ChatHistory.message("user", "u1"),
                ChatHistory.message("assistant", "a1"), ChatHistory.message("user", "u2"),
                ChatHistory.message("assistant", "a2"), ChatHistory.message("user", "u3")), history.messagesWith("u3"));
        assertEquals(List.of(ChatHistory.message("user", "u3")), new ChatHistory(null).messagesWith("u3"));

        history.reset();
        assertEquals(List.of(ChatHistory.message("system", "sys"), ChatHistory.message("user", "u3")),
                history.messagesWith("u3"));
    }

    @Test
    void theFewestOldestTurnsAreDroppedAndTheSystemPromptStays() {
        ChatHistory history = new ChatHistory("ss");   // 2
        history.add("uuu", "aaa");                     // 6
        history.add("u", "a");                         // 2
        history.add("uu", "aa");                       // 4

        assertEquals(0, history.turnsToDrop("m", CHARACTERS, 15));
        assertEquals(1, history.turnsToDrop("m", CHARACTERS, 14));
        assertEquals(1, history.turnsToDrop("m", CHARACTERS, 9));
        assertEquals(2, history.turnsToDrop("m", CHARACTERS, 8));
        assertEquals(3, history.turnsToDrop("m", CHARACTERS, 3));
        assertEquals(-1, history.turnsToDrop("m", CHARACTERS, 2), "the system prompt and the message alone are 3");
        assertEquals(3, history.turnCount(), "asking drops nothing");

        history.dropOldest(2);
        assertEquals(List.of(ChatHistory.message("system", "ss"), ChatHistory.message("user", "uu"),
                ChatHistory.message("assistant", "aa"), ChatHistory.message("user", "m")), history.messagesWith("m"));
    }
}
