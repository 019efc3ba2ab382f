package io.tsysci

/**
 * Runs tsys-ci commands for the tsys* steps: builds the command line with
 * every argument quoted for /bin/sh, streams tsys-ci's output to the console,
 * and fails the stage with tsys-ci's own message when it fails.
 *
 * The steps pass the pipeline script (`this`) so the Jenkins steps sh,
 * readFile, readJSON, fileExists and error are called the usual way.
 */
class TsysCi implements Serializable {
    /** tsys-ci's exit code when promote failed its probes and rolled back. */
    static final int EXIT_ROLLED_BACK = 3

    /** Where tsys-ci writes its results, next to its image layout. */
    static final String DIR = '.tsys-ci'

    private final def steps

    TsysCi(steps) {
        this.steps = steps
    }

    /**
     * A reference to a shell variable, for secrets Jenkins binds into the
     * environment: it goes into the command line as "$NAME", so the secret
     * never passes through Groovy string interpolation.
     */
    static Map env(String name) {
        return [shellVariable: name]
    }

    /** Quotes one argument for /bin/sh. */
    static String quote(def arg) {
        if (arg instanceof Map && arg.shellVariable) {
            return '"$' + arg.shellVariable + '"'
        }
        return "'" + String.valueOf(arg).replace("'", "'\"'\"'") + "'"
    }

    /** The command line for tsys-ci with these arguments. */
    static String commandLine(List args) {
        List words = ['tsys-ci']
        for (def a : args) {
            words.add(quote(a))
        }
        return words.join(' ')
    }

    /**
     * Runs `tsys-ci args...` and returns its exit status when it is 0 or one
     * of the extra statuses the caller handles; any other status fails the
     * stage with the message tsys-ci printed ("tsys-ci: error: ...").
     */
    int run(String step, List args, List handled = []) {
        String errFile = "${DIR}/${step}.stderr"
        // stderr goes to the console as it comes and, through tee, to a file
        // the message is read back from; the status survives the pipe in a file.
        // Jenkins runs the script with sh -xe: `|| rc=$?` keeps a failing
        // tsys-ci from ending the script before its status is written.
        String script = """mkdir -p ${DIR}
{ { rc=0; ${commandLine(args)} || rc=\$?; echo \$rc >${errFile}.rc; } 2>&1 1>&3 3>&- | tee ${errFile} 1>&2 3>&-; } 3>&1
exit "\$(cat ${errFile}.rc)"
"""
        int status = steps.sh(script: script, returnStatus: true, label: "tsys-ci ${args[0]}")
        if (status == 0 || handled.contains(status)) {
            return status
        }
        steps.error("${step}: ${message(errFile, args[0], status)}")
        return status
    }

    /** tsys-ci's own error message, else the last line it printed. */
    String message(String errFile, String command, int status) {
        String last = ''
        if (steps.fileExists(errFile)) {
            for (String line : steps.readFile(errFile).readLines()) {
                if (line.startsWith('tsys-ci: error: ')) {
                    return line.substring('tsys-ci: error: '.length())
                }
                if (line.trim()) {
                    last = line.trim()
                }
            }
        }
        String what = "tsys-ci ${command} exited with status ${status}"
        return last ? "${what}: ${last}" : what
    }

    /** Reads a JSON result tsys-ci wrote, failing the stage if it is missing. */
    Map result(String step, String file) {
        if (!steps.fileExists(file)) {
            steps.error("${step}: tsys-ci succeeded but wrote no result at ${file}")
        }
        Map r = [:]
        r.putAll(steps.readJSON(file: file))
        r.resultFile = file
        return r
    }

    /** The --from value: a result returned by an earlier step, or a path. */
    static String fromFile(def from, String dflt) {
        if (from == null) {
            return dflt
        }
        if (from instanceof Map) {
            return from.resultFile ?: dflt
        }
        return String.valueOf(from)
    }
}
