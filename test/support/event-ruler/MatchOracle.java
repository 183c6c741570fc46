import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import software.amazon.event.ruler.Machine;

/**
 * The oracle of the differential test: for each line {"pattern": …, "event": …} on stdin, one line on stdout —
 * {"match": true|false} as event-ruler's array-consistent matcher (rulesForJSONEvent) decides, or {"error": "…"} when
 * it refuses the pattern or the event. One JVM for the whole run, so thousands of cases take seconds.
 */
public final class MatchOracle {
  public static void main(String[] args) throws Exception {
    ObjectMapper json = new ObjectMapper();
    BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
    PrintStream out = new PrintStream(System.out, false, StandardCharsets.UTF_8);
    String line;
    while ((line = in.readLine()) != null) {
      if (line.isBlank()) continue;
      ObjectNode answer = json.createObjectNode();
      try {
        JsonNode testCase = json.readTree(line);
        Machine machine = new Machine();
        machine.addRule("r", json.writeValueAsString(testCase.get("pattern")));
        boolean matched = !machine.rulesForJSONEvent(json.writeValueAsString(testCase.get("event"))).isEmpty();
        answer.put("match", matched);
      } catch (Exception | StackOverflowError e) {
        answer.put("error", e.getClass().getSimpleName() + ": " + e.getMessage());
      }
      out.println(json.writeValueAsString(answer));
      out.flush();
    }
  }
}
