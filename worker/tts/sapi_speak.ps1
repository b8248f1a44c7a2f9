# Renders a text file to a WAV file with Windows' System.Speech (SAPI). Run by rayvault-worker for
# the `sapi` TTS provider: the text comes from a UTF-8 file, never from the command line.
param(
    [Parameter(Mandatory = $true)][string]$TextFile,
    [Parameter(Mandatory = $true)][string]$OutFile,
    [string]$Voice = "",
    [int]$Rate = 0,
    [int]$Volume = 100
)
$ErrorActionPreference = "Stop"
try {
    Add-Type -AssemblyName System.Speech
    $synth = New-Object System.Speech.Synthesis.SpeechSynthesizer
    try {
        if ($Voice -ne "" -and $Voice -ne "default") {
            $names = @($synth.GetInstalledVoices() | ForEach-Object { $_.VoiceInfo.Name })
            if ($names -notcontains $Voice) {
                [Console]::Error.WriteLine("SAPI voice not installed: $Voice (installed: $($names -join ', '))")
                exit 3
            }
            $synth.SelectVoice($Voice)
        }
        $synth.Rate = [Math]::Max(-10, [Math]::Min(10, $Rate))
        $synth.Volume = [Math]::Max(0, [Math]::Min(100, $Volume))
        $text = [System.IO.File]::ReadAllText($TextFile, [System.Text.Encoding]::UTF8)
        $synth.SetOutputToWaveFile($OutFile)
        $synth.Speak($text)
    }
    finally {
        $synth.Dispose()
    }
}
catch {
    [Console]::Error.WriteLine("SAPI failed: $($_.Exception.Message)")
    exit 2
}
exit 0
