/**
 * Spring Boot auto-configuration for Kiln: an {@code Engine} for the model directory in
 * {@code spring.ai.kiln.model}, and a {@code KilnChatModel} on it. See
 * {@link ai.kiln.springai.autoconfigure.KilnChatAutoConfiguration}.
 *
 * <pre>
 * spring.ai.kiln.model=/models/llama-3.2-1b-instruct
 * spring.ai.kiln.device=auto                 # cpu, cuda, cuda:N
 * spring.ai.kiln.gpu-memory-utilization=0.8  # CUDA; on the CPU: spring.ai.kiln.kv-cache-bytes=1GB
 * spring.ai.kiln.max-model-len=8192
 * spring.ai.kiln.chat.temperature=0.7
 * spring.ai.kiln.chat.max-tokens=512
 * </pre>
 */
package ai.kiln.springai.autoconfigure;
