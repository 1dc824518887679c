/**
 * Spring AI on Kiln: {@link ai.kiln.springai.KilnChatModel}, a {@code ChatModel} that runs a
 * model in this JVM on a Kiln engine, and its options, {@link ai.kiln.springai.KilnChatOptions}.
 * The Spring Boot auto-configuration is in {@code ai.kiln.springai.autoconfigure}.
 */
package ai.kiln.springai;
