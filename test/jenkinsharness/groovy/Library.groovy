import java.lang.annotation.Retention
import java.lang.annotation.RetentionPolicy

/** The harness's stand-in for Jenkins' @Library annotation, so a Jenkinsfile compiles. */
@Retention(RetentionPolicy.SOURCE)
@interface Library {
    String[] value()
}
