import io.tsysci.TsysCi

/**
 * tsysPromote: rolls the pushed image out with `tsys-ci promote` (blue/green
 * or canary, rolled back on its own when its probes fail) and publishes the
 * probe results as a JUnit report, also when the promote failed.
 *
 *   tsysPromote app: 'whiteboard'
 *
 * The image is tsysPush's result (from:, default .tsys-ci/push.json) or
 * image: 'HOST/PROJECT/NAME@sha256:...'. Its signature is verified with the
 * public key in the secret file credential verifyKeyId (default
 * 'cosign-public-key') unless allowUnsigned: true. kubeconfigId names a
 * secret file credential bound to KUBECONFIG when the agent has no
 * in-cluster access.
 */
def call(Map args = [:]) {
    if (!args.app) {
        error("tsysPromote: app is required, e.g. tsysPromote(app: 'whiteboard')")
    }
    String report = args.report ?: "${TsysCi.DIR}/promote-junit.xml"
    // Flags first, the app last: urfave/cli stops reading flags at the
    // first positional argument.
    List cli = ['promote']
    if (args.image) {
        cli += ['--image', args.image]
    } else {
        cli += ['--from', TsysCi.fromFile(args.from, "${TsysCi.DIR}/push.json")]
    }
    if (args.spec) { cli += ['--spec', args.spec] }
    if (args.strategy) { cli += ['--strategy', args.strategy] }
    List creds = []
    if (args.allowUnsigned) {
        cli += ['--allow-unsigned']
    } else {
        cli += ['--verify-key', TsysCi.env('TSYS_CI_VERIFY_KEY')]
        creds += [file(credentialsId: args.verifyKeyId ?: 'cosign-public-key', variable: 'TSYS_CI_VERIFY_KEY')]
    }
    if (args.kubeconfigId) {
        creds += [file(credentialsId: args.kubeconfigId, variable: 'KUBECONFIG')]
    }
    cli += ['--report', report, args.app]

    def tsys = new TsysCi(this)
    int status = 0
    withCredentials(creds) {
        status = tsys.run('tsysPromote', cli, [TsysCi.EXIT_ROLLED_BACK])
    }
    if (fileExists(report)) {
        junit(testResults: report, allowEmptyResults: false)
    }
    if (status == TsysCi.EXIT_ROLLED_BACK) {
        error("tsysPromote: ${args.app} failed its probes and was rolled back: ${tsys.message("${TsysCi.DIR}/tsysPromote.stderr", 'promote', status)}")
    }
    echo "tsysPromote: ${args.app} promoted"
}
