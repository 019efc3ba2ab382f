// harness.groovy: runs a Jenkinsfile (or a pipeline script) with the shared
// library's vars/ and src/, supplying the Jenkins pipeline steps they use.
//
// This is a test harness, not Jenkins: the steps below follow the documented
// behaviour of Jenkins' steps (sh -xe in the workspace, withCredentials
// binding environment variables and temporary secret files, junit failing on
// a missing report, error aborting the build), record every call, and run
// the sh scripts for real when the test says so. Declarative pipeline
// syntax is supported as far as the template uses it (agent, options,
// stages, stage, when { branch }, steps).
//
// Usage: groovy harness.groovy CONFIG.json...   (written by the Go test; one
// JVM runs them all, each with a fresh binding and workspace)
import groovy.json.JsonOutput
import groovy.json.JsonSlurper

class PipelineError extends RuntimeException {
    PipelineError(String message) { super(message) }
}

def runOne = { String cfgPath ->
    def cfg = new JsonSlurper().parse(new File(cfgPath))
    File ws = new File(cfg.workspace)
    List events = []
    Map env = new LinkedHashMap(cfg.env ?: [:])
    List tempFiles = []
    def binding = new Binding()

    def record = { Map e -> events << e; System.err.println("[harness] " + JsonOutput.toJson(e)) }

    binding.env = env
    binding.echo = { Object msg -> record([step: 'echo', message: String.valueOf(msg)]) }
    binding.error = { Object msg ->
        record([step: 'error', message: String.valueOf(msg)])
        throw new PipelineError(String.valueOf(msg))
    }
    binding.fileExists = { Object p -> new File(ws, p instanceof Map ? p.file : String.valueOf(p)).exists() }
    binding.readFile = { Object p -> new File(ws, p instanceof Map ? p.file : String.valueOf(p)).getText('UTF-8') }
    binding.readJSON = { Map a -> new JsonSlurper().parse(new File(ws, a.file)) }
    binding.usernamePassword = { Map a -> [type: 'usernamePassword'] + a }
    binding.file = { Map a -> [type: 'file'] + a }
    binding.string = { Map a -> [type: 'string'] + a }

    binding.withCredentials = { List bindings, Closure body ->
        Map saved = new LinkedHashMap(env)
        List bound = []
        for (Map b : bindings) {
            Map c = cfg.credentials?.get(b.credentialsId)
            if (c == null || c.type != b.type) {
                record([step: 'withCredentials', missing: b.credentialsId, type: b.type])
                throw new PipelineError("Could not find credentials entry with ID '${b.credentialsId}'")
            }
            switch (b.type) {
                case 'usernamePassword':
                    env[b.usernameVariable] = c.username
                    env[b.passwordVariable] = c.password
                    bound << [type: b.type, credentialsId: b.credentialsId, variables: [b.usernameVariable, b.passwordVariable]]
                    break
                case 'file':
                    File f = File.createTempFile('secret', '.tmp', new File(cfg.tmp))
                    f.text = c.content
                    tempFiles << f
                    env[b.variable] = f.absolutePath
                    bound << [type: b.type, credentialsId: b.credentialsId, variables: [b.variable]]
                    break
                case 'string':
                    env[b.variable] = c.secret
                    bound << [type: b.type, credentialsId: b.credentialsId, variables: [b.variable]]
                    break
            }
        }
        record([step: 'withCredentials', bindings: bound])
        try {
            return body()
        } finally {
            env.clear()
            env.putAll(saved)
            tempFiles.each { it.delete() }
        }
    }

    binding.sh = { Object a ->
        Map args = a instanceof Map ? a : [script: String.valueOf(a)]
        String script = String.valueOf(args.script)
        def m = script =~ /tsys-ci '([a-z][a-z-]*)'/
        String command = m.find() ? m.group(1) : ''
        Map e = [step: 'sh', script: script, command: command, env: new LinkedHashMap(env), label: args.label]
        int status
        String out = ''
        if (command in (cfg.real ?: [])) {
            File f = File.createTempFile('script', '.sh', new File(cfg.tmp))
            f.text = script
            def pb = new ProcessBuilder('/bin/sh', '-xe', f.absolutePath).directory(ws).redirectErrorStream(true)
            pb.environment().put('PATH', cfg.path)
            env.each { k, v -> pb.environment().put(String.valueOf(k), String.valueOf(v)) }
            def p = pb.start()
            out = p.inputStream.getText('UTF-8')
            status = p.waitFor()
            f.delete()
            e.executed = true
            e.output = out
        } else {
            status = (cfg.status ?: [:])[command] ?: 0
            e.executed = false
        }
        e.status = status
        record(e)
        if (args.returnStatus) { return status }
        if (status != 0) { throw new PipelineError("script returned exit code ${status}") }
        if (args.returnStdout) { return out }
        return null
    }

    binding.junit = { Map a ->
        File f = new File(ws, a.testResults)
        if (!f.exists()) {
            record([step: 'junit', testResults: a.testResults, found: false])
            if (!a.allowEmptyResults) { throw new PipelineError('No test report files were found. Configuration error?') }
            return null
        }
        def suite = new XmlSlurper().parse(f)
        def cases = suite.'**'.findAll { it.name() == 'testcase' }
        int failed = cases.count { !it.failure.isEmpty() || !it.error.isEmpty() }
        record([step: 'junit', testResults: a.testResults, found: true, tests: cases.size(), failures: failed])
        return [totalCount: cases.size(), failCount: failed]
    }

    // Declarative syntax, as far as the Jenkinsfile template uses it.
    def stageFailed = false
    binding.pipeline = { Closure body ->
        def top = new Expando(
            agent: { Closure c -> record([step: 'agent', spec: c.call() ?: '']) },
            options: { Closure c -> },
            stages: { Closure c ->
                c.resolveStrategy = Closure.DELEGATE_FIRST
                c.delegate = new Expando(stage: { String name, Closure sc ->
                    def st = [when: true, steps: null]
                    def branchCheck = { String b -> st.when = st.when && env.BRANCH_NAME == b }
                    sc.resolveStrategy = Closure.DELEGATE_FIRST
                    sc.delegate = new Expando(
                        when: { Closure w -> w.resolveStrategy = Closure.DELEGATE_FIRST; w.delegate = new Expando(branch: branchCheck); w.call() },
                        steps: { Closure s -> st.steps = s })
                    sc.call()
                    if (stageFailed || !st.when) {
                        record([step: 'stage', name: name, skipped: true])
                        return
                    }
                    record([step: 'stage', name: name])
                    try {
                        st.steps.call()
                    } catch (PipelineError err) {
                        stageFailed = true
                        throw err
                    }
                })
                c.call()
            })
        body.resolveStrategy = Closure.DELEGATE_FIRST
        body.delegate = top
        body.call()
    }
    binding.label = { String l -> 'label ' + l }
    binding.disableConcurrentBuilds = { -> null }

    def shell = new GroovyShell(this.class.classLoader, binding)
    shell.classLoader.addClasspath(cfg.harnessDir)
    shell.classLoader.addClasspath(new File(cfg.library, 'src').absolutePath)
    new File(cfg.library, 'vars').listFiles().findAll { it.name.endsWith('.groovy') }.sort().each { File f ->
        Script s = shell.parse(f)
        s.binding = binding
        binding.setVariable(f.name - '.groovy', { Object... a -> s.invokeMethod('call', a) })
    }

    String result = 'SUCCESS'
    String message = null
    try {
        shell.parse(new File(cfg.pipeline)).run()
    } catch (PipelineError err) {
        result = 'FAILURE'
        message = err.message
    }
    new File(cfg.events).text = JsonOutput.toJson([result: result, message: message, events: events])
}

for (String a : args) {
    runOne(a)
}
