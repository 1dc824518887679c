package ai.kiln.docs;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.kiln.cli.KilnCli;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.io.StringWriter;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.tools.JavaCompiler;
import javax.tools.JavaFileObject;
import javax.tools.SimpleJavaFileObject;
import javax.tools.StandardJavaFileManager;
import javax.tools.ToolProvider;
import org.junit.jupiter.api.Test;

/**
 * What README promises a reader who copies from it: the first command prints the text README
 * quotes, every Java snippet compiles as written (its imports included) against Kiln's modules,
 * and the licence it states is the one in LICENSE and in the POMs.
 */
class ReadmeTest {

    static final Pattern JAVA_BLOCK = Pattern.compile("```java\\n(.*?)```", Pattern.DOTALL);

    @Test
    void everyJavaSnippetCompilesWithItsImports() throws IOException {
        String readme = Files.readString(Path.of("README.md"));
        List<JavaFileObject> sources = new ArrayList<>();
        Matcher m = JAVA_BLOCK.matcher(readme);
        while (m.find()) {
            sources.add(snippetClass("Snippet" + sources.size(), m.group(1)));
        }
        assertTrue(sources.size() >= 2, "README's Java snippets were found: " + sources.size());
        JavaCompiler javac = ToolProvider.getSystemJavaCompiler();
        StringWriter errors = new StringWriter();
        Path out = Files.createTempDirectory("readme-snippets");
        try (StandardJavaFileManager files = javac.getStandardFileManager(null, null, null)) {
            boolean compiled = javac.getTask(errors, files, null,
                    List.of("-d", out.toString(), "-classpath", System.getProperty("java.class.path"), "-proc:none"),
                    null, sources).call();
            assertTrue(compiled, errors.toString());
        }
    }

    /** A snippet as a class: its imports at the top, its statements in a method. */
    static JavaFileObject snippetClass(String name, String snippet) {
        StringBuilder imports = new StringBuilder();
        StringBuilder body = new StringBuilder();
        for (String line : snippet.split("\n")) {
            (line.startsWith("import ") ? imports : body).append(line).append('\n');
        }
        String code = imports + "class " + name + " {\n  static void run() throws Exception {\n" + body + "  }\n}\n";
        return new SimpleJavaFileObject(URI.create("string:///" + name + ".java"), JavaFileObject.Kind.SOURCE) {
            @Override
            public CharSequence getCharContent(boolean ignoreEncodingErrors) {
                return code;
            }
        };
    }

    /** The README's first command, and the sentence README says it prints. */
    static final Pattern FIRST_COMMAND = Pattern.compile("```bash\\nmvn -B -q package -DskipTests && bin/kiln (generate [^\\n]*)\\n```");
    static final Pattern PRINTED = Pattern.compile("It prints `([^`]*)`");

    @Test
    void theFirstCommandPrintsTheTextReadmeQuotes() throws IOException {
        String readme = Files.readString(Path.of("README.md"));
        Matcher command = FIRST_COMMAND.matcher(readme);
        Matcher printed = PRINTED.matcher(readme.replace("\n", " "));
        assertTrue(command.find(), "README's first command");
        assertTrue(printed.find(), "what README says it prints");
        List<String> args = new ArrayList<>();
        Matcher word = Pattern.compile("\"([^\"]*)\"|(\\S+)").matcher(command.group(1));
        while (word.find()) {
            args.add(word.group(1) != null ? word.group(1) : word.group(2));
        }
        args.addAll(List.of("--device", "cpu"));
        PrintStream out = System.out;
        ByteArrayOutputStream printedBytes = new ByteArrayOutputStream();
        int code;
        try {
            System.setOut(new PrintStream(printedBytes, true, StandardCharsets.UTF_8));
            code = KilnCli.execute(args.toArray(String[]::new));
        } finally {
            System.setOut(out);
        }
        assertEquals(0, code);
        assertEquals(printed.group(1), printedBytes.toString(StandardCharsets.UTF_8).stripTrailing());
    }

    @Test
    void theLicenceIsApache2InLicenseAndInThePoms() throws IOException {
        String license = Files.readString(Path.of("LICENSE"));
        assertTrue(license.contains("Apache License") && license.contains("Version 2.0, January 2004"));
        for (Path pom : List.of(Path.of("pom.xml"), Path.of("java/kiln-bom/pom.xml"))) {
            String text = Files.readString(pom);
            assertTrue(text.contains("<name>Apache-2.0</name>"), pom + " declares its licence");
        }
        assertEquals(1, countOf(Files.readString(Path.of("README.md")), "Apache-2.0"), "README names the licence once");
    }

    static int countOf(String text, String word) {
        int count = 0;
        for (int at = text.indexOf(word); at >= 0; at = text.indexOf(word, at + 1)) {
            count++;
        }
        return count;
    }
}
