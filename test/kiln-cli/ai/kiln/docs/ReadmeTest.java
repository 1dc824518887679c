package ai.kiln.docs;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
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
 * What README promises a reader who copies from it: every Java snippet compiles as written (its
 * imports included) against Kiln's modules, and the licence it states is the one in LICENSE and
 * in the POMs.
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
