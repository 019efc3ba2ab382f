// harness.groovy: the tsys-ci Jenkins pipeline harness. NOT JENKINS.
//
// Runs one build of a Jenkinsfile with a shared library's vars/ and src/,
// supplying the pipeline steps the library and the template use, each with
// the semantics Jenkins gives it (read from Jenkins' and its plugins'
// sources, docs/jenkins.md says which):
//   sh              /bin/sh -xe SCRIPT in the workspace, run for real, output
//                   to the console; a non-zero status fails the step unless
//                   returnStatus; on abort the process tree gets SIGTERM,
//                   children first, with one SoftKillWaitSeconds (5 s)
//                   deadline, as hudson.util.ProcessTree does; the step ends
//                   when the process does, or 10 s after the stop
//                   ("After 10s process did not stop"), as durable-task does
//   withCredentials usernamePassword (variables), file (a temporary file
//                   under WORKSPACE@tmp/secretFiles/, deleted after the
//                   block, its path in the variable), string (variable);
//                   bound values are masked as **** in the console
//   junit           reads and parses the report, keeps a copy with the build;
//                   failed tests mark the build and stage UNSTABLE; a missing
//                   report, or one older than the build, fails the step
//   error           fails the stage with its message
//   echo, readFile, readJSON, fileExists
// Declarative syntax as far as the template uses it (agent, options,
// stages, stage, when { branch }, steps): a failed stage skips the later
// ones, the build result is the worst seen (SUCCESS < UNSTABLE < FAILURE <
// ABORTED). Abort: the test creates the build's abort file; the running sh
// is stopped as above, a step not yet started is not run.
//
// Usage: groovy harness.groovy CONFIG.json   (written by jenkinsharness.Job)
import groovy.json.JsonOutput
import groovy.json.JsonSlurper
import java.util.concurrent.TimeUnit

class PipelineError extends RuntimeException {
    PipelineError(String message) { super(message) }
}

class PipelineAborted extends RuntimeException {
    PipelineAborted(String message) { super(message) }
}

// The delegate of a declarative block: its own methods, and nothing else,
// so every other name (env, params, the library's steps) falls through to
// the script's binding. (An Expando answers null for unknown properties.)
class Dsl extends GroovyObjectSupport {
    Map methods
    Dsl(Map methods) { this.methods = methods }
    Object invokeMethod(String name, Object args) {
        if (methods.containsKey(name)) {
            return ((Closure) methods[name]).call(*((Object[]) args))
        }
        throw new MissingMethodException(name, Dsl, (Object[]) args)
    }
    Object getProperty(String name) {
        throw new MissingPropertyException(name, Dsl)
    }
}

def cfg = new JsonSlurper().parse(new File(args[0]))
File ws = new File(cfg.workspace)
ws.mkdirs()
File wsTmp = new File(cfg.workspace + '@tmp')
File buildDir = new File(cfg.buildDir)
File abortFile = new File(cfg.abortFile)
long buildStart = System.currentTimeMillis()
long softKillWaitSeconds = cfg.softKillWaitSeconds ?: 5
long stopTimeoutSeconds = cfg.stopTimeoutSeconds ?: 10

Map env = new LinkedHashMap(cfg.env ?: [:])
Map agentEnv = new LinkedHashMap(cfg.agentEnv ?: [:])
List secrets = []
def stdout = new PrintStream(new FileOutputStream(FileDescriptor.out), true, 'UTF-8')

// Masks bound secrets as Jenkins' credentials-binding does: the value, and
// the value as sh -x quotes it.
def mask = { String s ->
    List vs
    synchronized (secrets) { vs = new ArrayList(secrets) }
    vs.sort { -it.length() }
    for (String v : vs) {
        s = s.replace(v, '****')
        if (v.contains("'")) {
            s = s.replace("'" + v.replace("'", "'\"'\"'") + "'", '****')
        }
    }
    return s
}
def console = { String line -> synchronized (stdout) { stdout.println(mask(line)) } }

List order = ['SUCCESS', 'UNSTABLE', 'FAILURE', 'NOT_BUILT', 'ABORTED']
String buildResult = 'SUCCESS'
def worsen = { String r -> if (order.indexOf(r) > order.indexOf(buildResult)) { buildResult = r } }
List stages = []
Map currentStage = null
List tests = []
List leftovers = []

def checkAbort = {
    if (abortFile.exists()) {
        throw new PipelineAborted('aborted before the step started')
    }
}
def step = { String name ->
    checkAbort()
    console('[Pipeline] ' + name)
}

def binding = new Binding()
binding.env = env
binding.echo = { Object msg -> step('echo'); console(String.valueOf(msg)) }
binding.error = { Object msg ->
    step('error')
    throw new PipelineError(String.valueOf(msg))
}
binding.fileExists = { Object p -> step('fileExists'); new File(ws, p instanceof Map ? p.file : String.valueOf(p)).exists() }
binding.readFile = { Object p -> step('readFile'); new File(ws, p instanceof Map ? p.file : String.valueOf(p)).getText('UTF-8') }
binding.readJSON = { Map a -> step('readJSON'); new JsonSlurper().parse(new File(ws, a.file)) }
binding.usernamePassword = { Map a -> [type: 'usernamePassword'] + a }
binding.file = { Map a -> [type: 'file'] + a }
binding.string = { Map a -> [type: 'string'] + a }

binding.withCredentials = { List bindings, Closure body ->
    step('withCredentials')
    Map saved = new LinkedHashMap(env)
    List added = []
    List dirs = []
    List vars = []
    try {
        for (Map b : bindings) {
            Map c = cfg.credentials?.get(b.credentialsId)
            if (c == null) {
                throw new PipelineError("Could not find credentials entry with ID '${b.credentialsId}'")
            }
            if (c.type != b.type) {
                throw new PipelineError("Credentials '${b.credentialsId}' is of type '${c.type}' where '${b.type}' was expected")
            }
            switch (b.type) {
                case 'usernamePassword':
                    env[b.usernameVariable] = c.username
                    env[b.passwordVariable] = c.password
                    added << c.password
                    vars << b.passwordVariable
                    // credentials 2.6+: a username is masked only when the
                    // credential says it is secret (the default for new ones is not)
                    if (c.usernameSecret) {
                        added << c.username
                        vars << b.usernameVariable
                    }
                    break
                case 'file':
                    File dir = new File(wsTmp, 'secretFiles/' + UUID.randomUUID())
                    dir.mkdirs()
                    dirs << dir
                    File f = new File(dir, c.fileName ?: 'secret')
                    f.setText(c.content, 'UTF-8')
                    f.setReadable(false, false); f.setReadable(true, true)
                    env[b.variable] = f.absolutePath
                    added << f.absolutePath
                    vars << b.variable
                    break
                case 'string':
                    env[b.variable] = c.secret
                    added << c.secret
                    vars << b.variable
                    break
                default:
                    throw new PipelineError("harness: credential binding type ${b.type} is not supported")
            }
        }
        synchronized (secrets) { secrets.addAll(added.findAll { it }) }
        console('Masking supported pattern matches of ' + vars.collect { '$' + it }.join(' or '))
        return body()
    } finally {
        env.clear()
        env.putAll(saved)
        synchronized (secrets) { added.each { secrets.remove(it) } }
        dirs.each { it.deleteDir() }
    }
}

// Jenkins' ProcessTree.UnixProcess.killRecursively: children first, SIGTERM
// (ProcessHandle.destroy), waiting for each to be gone until one deadline.
def killRecursively
killRecursively = { ProcessHandle h, long deadline ->
    for (Object c : h.children().toArray()) {
        killRecursively((ProcessHandle) c, deadline)
    }
    if (h.isAlive()) {
        console("[harness] SIGTERM to pid ${h.pid()} (${h.info().command().orElse('?')})")
        h.destroy()
        File status = new File("/proc/${h.pid()}/status")
        def exited = h.onExit()
        while (status.exists() && System.nanoTime() < deadline && !exited.isDone()) {
            try {
                exited.get(100, TimeUnit.MILLISECONDS)
            } catch (java.util.concurrent.TimeoutException ignored) {
                // not gone yet: look again until the deadline
            }
        }
    }
}

binding.sh = { Object a ->
    Map args = a instanceof Map ? a : [script: String.valueOf(a)]
    step('sh' + (args.label ? " (${args.label})" : ''))
    File dir = new File(wsTmp, 'durable-' + UUID.randomUUID().toString().substring(0, 8))
    dir.mkdirs()
    File script = new File(dir, 'script.sh')
    script.setText(String.valueOf(args.script), 'UTF-8')
    def pb = new ProcessBuilder('/bin/sh', '-xe', script.absolutePath).directory(ws)
    Map penv = pb.environment()
    penv.clear()
    agentEnv.each { k, v -> penv.put(String.valueOf(k), String.valueOf(v)) }
    env.each { k, v -> if (v != null) { penv.put(String.valueOf(k), String.valueOf(v)) } }
    if (!args.returnStdout) {
        pb.redirectErrorStream(true)
    }
    Process p = pb.start()
    p.outputStream.close()
    StringBuilder captured = new StringBuilder()
    def pump = { InputStream is, boolean capture ->
        Thread.start {
            is.newReader('UTF-8').eachLine { String l ->
                if (capture) { synchronized (captured) { captured.append(l).append('\n') } } else { console(l) }
            }
        }
    }
    List pumps = [pump(p.inputStream, args.returnStdout as boolean)]
    if (args.returnStdout) {
        pumps << pump(p.errorStream, false)
    }
    boolean aborted = false
    try {
        while (!p.waitFor(100, TimeUnit.MILLISECONDS)) {
            if (abortFile.exists()) {
                aborted = true
                long stopped = System.nanoTime()
                console('Aborted by the test (an abort request to the harness)')
                console('Sending interrupt signal to process')
                Thread killer = Thread.start {
                    killRecursively(p.toHandle(), System.nanoTime() + TimeUnit.SECONDS.toNanos(softKillWaitSeconds))
                }
                long left = stopTimeoutSeconds * 1000 - TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - stopped)
                if (!p.waitFor(Math.max(left, 0), TimeUnit.MILLISECONDS)) {
                    console("After ${stopTimeoutSeconds}s process did not stop")
                    leftovers << p.toHandle()
                }
                killer.join(TimeUnit.SECONDS.toMillis(softKillWaitSeconds) + 1000)
                break
            }
        }
    } finally {
        pumps.each { it.join(2000) }
        dir.deleteDir()
    }
    if (aborted) {
        throw new PipelineAborted('aborted while sh ran')
    }
    int status = p.exitValue()
    if (args.returnStatus) {
        return status
    }
    if (status != 0) {
        throw new PipelineError("script returned exit code ${status}")
    }
    if (args.returnStdout) {
        return captured.toString()
    }
    return null
}

binding.junit = { Object a ->
    Map args = a instanceof Map ? a : [testResults: String.valueOf(a)]
    step('junit')
    console('Recording test results')
    String pattern = String.valueOf(args.testResults)
    if (pattern.contains('*') || pattern.contains(',')) {
        throw new PipelineError("harness: junit testResults '${pattern}' is a pattern; the harness reads one file")
    }
    File f = new File(ws, pattern)
    if (!f.exists()) {
        if (args.allowEmptyResults) {
            console('None of the test reports contained any result')
            return [totalCount: 0, failCount: 0, skipCount: 0, passCount: 0]
        }
        throw new PipelineError('No test report files were found. Configuration error?')
    }
    // hudson.tasks.junit.TestResult: reports older than the build (3 s of
    // margin) are not this build's.
    if (f.lastModified() < buildStart - 3000) {
        throw new PipelineError("Test reports were found but none of them are new. Did leafNodes run? \nFor example, ${f} is ${(buildStart - f.lastModified()) / 1000 as long} sec old\n")
    }
    def root
    try {
        root = new XmlSlurper().parse(f)
    } catch (Exception e) {
        throw new PipelineError("Failed to read test report file ${f}: ${e.message}")
    }
    List cases = []
    root.'**'.findAll { it.name() == 'testcase' }.each { tc ->
        String st = 'PASSED'
        String msg = null
        if (!tc.failure.isEmpty()) { st = 'FAILED'; msg = tc.failure[0].@message.text() ?: tc.failure[0].text() }
        else if (!tc.error.isEmpty()) { st = 'FAILED'; msg = tc.error[0].@message.text() ?: tc.error[0].text() }
        else if (!tc.skipped.isEmpty()) { st = 'SKIPPED' }
        String suite = tc.parent().name() == 'testsuite' ? tc.parent().@name.text() : ''
        cases << [suite: suite, name: tc.@name.text(), status: st, message: msg]
    }
    File keep = new File(buildDir, 'junit/' + (tests.size() + 1) + '-' + f.name)
    keep.parentFile.mkdirs()
    keep.bytes = f.bytes
    int failed = cases.count { it.status == 'FAILED' }
    int skipped = cases.count { it.status == 'SKIPPED' }
    tests << [file: pattern, kept: keep.absolutePath, stage: currentStage?.name, total: cases.size(), failed: failed, skipped: skipped, cases: cases]
    if (failed > 0) {
        worsen('UNSTABLE')
        if (currentStage != null && currentStage.status == 'SUCCESS') {
            currentStage.status = 'UNSTABLE'
        }
        console("[harness] ${failed} of ${cases.size()} tests failed: build and stage UNSTABLE, as the junit step marks them")
    }
    return [totalCount: cases.size(), failCount: failed, skipCount: skipped, passCount: cases.size() - failed - skipped]
}

// Declarative syntax, as far as the Jenkinsfile template uses it.
binding.pipeline = { Closure body ->
    console('[Pipeline] Start of Pipeline')
    Throwable pending = null
    def top = new Dsl(
        agent: { Closure c ->
            def spec = c.call()
            console('[Pipeline] node')
            console("Running on the harness (not a Jenkins agent; ${spec ?: 'any'}) in ${ws}")
        },
        options: { Closure c -> c.call() },
        stages: { Closure c ->
            c.resolveStrategy = Closure.DELEGATE_FIRST
            c.delegate = new Dsl(stage: { String name, Closure sc ->
                def st = [when: true, steps: null]
                def branchCheck = { String b -> st.when = st.when && env.BRANCH_NAME == b }
                sc.resolveStrategy = Closure.DELEGATE_FIRST
                sc.delegate = new Dsl(
                    when: { Closure w -> w.resolveStrategy = Closure.DELEGATE_FIRST; w.delegate = new Dsl(branch: branchCheck); w.call() },
                    steps: { Closure s -> st.steps = s })
                sc.call()
                Map rec = [name: name, status: 'SUCCESS']
                stages << rec
                console('[Pipeline] stage')
                console("[Pipeline] { (${name})")
                if (pending != null) {
                    console("Stage \"${name}\" skipped due to earlier failure(s)")
                    rec.status = 'SKIPPED'
                } else if (!st.when) {
                    console("Stage \"${name}\" skipped due to when conditional")
                    rec.status = 'SKIPPED'
                } else {
                    currentStage = rec
                    try {
                        st.steps.call()
                    } catch (PipelineAborted e) {
                        rec.status = 'ABORTED'
                        pending = e
                    } catch (PipelineError e) {
                        rec.status = 'FAILURE'
                        rec.error = e.message
                        pending = e
                    } finally {
                        currentStage = null
                    }
                }
                console('[Pipeline] }')
                console('[Pipeline] // stage')
            })
            c.call()
        })
    body.resolveStrategy = Closure.DELEGATE_FIRST
    body.delegate = top
    body.call()
    if (pending != null) {
        throw pending
    }
}
binding.label = { String l -> "label '${l}'".toString() }
binding.disableConcurrentBuilds = { -> null }

def shell = new GroovyShell(this.class.classLoader, binding)
shell.classLoader.addClasspath(cfg.harnessDir)
shell.classLoader.addClasspath(new File(cfg.library, 'src').absolutePath)
new File(cfg.library, 'vars').listFiles().findAll { it.name.endsWith('.groovy') }.sort().each { File f ->
    Script s = shell.parse(f)
    s.binding = binding
    binding.setVariable(f.name - '.groovy', { Object... a -> s.invokeMethod('call', a) })
}

console("Started by the tsys-ci Jenkins pipeline harness (NOT Jenkins): ${cfg.jobName} #${cfg.number}")
String message = null
try {
    shell.parse(new File(cfg.pipeline)).run()
} catch (PipelineAborted e) {
    worsen('ABORTED')
    message = 'aborted'
} catch (PipelineError e) {
    console("ERROR: ${e.message}")
    worsen('FAILURE')
    message = e.message
} catch (Throwable e) {
    // A bug of the harness or a Groovy error of the pipeline: Jenkins would
    // print the stack trace and fail the build the same way.
    def sw = new StringWriter()
    e.printStackTrace(new PrintWriter(sw))
    sw.toString().readLines().each { console(it) }
    worsen('FAILURE')
    message = e.toString()
}
console('[Pipeline] End of Pipeline')
for (ProcessHandle h : leftovers) {
    if (h.isAlive()) {
        // A Jenkins agent would leave it running; the harness does not
        // leave processes behind a test.
        console("[harness] killing pid ${h.pid()}, left running after the abort (a Jenkins agent would leave it)")
        h.descendants().toArray().each { ((ProcessHandle) it).destroyForcibly() }
        h.destroyForcibly()
    }
}
console("Finished: ${buildResult}")
new File(cfg.resultFile).text = JsonOutput.toJson([result: buildResult, message: message, stages: stages, tests: tests])
