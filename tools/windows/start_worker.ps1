<#
.SYNOPSIS
  Starts the RayVault cluster worker on this Windows PC, or installs it as a Scheduled Task that
  starts at logon.

.DESCRIPTION
  The worker listens on this PC's tailnet address (from `tailscale ip -4`, else 127.0.0.1).
  The cluster secret never appears on a command line: it is read from RAYVAULT_CLUSTER_SECRET
  (and RAYVAULT_CLUSTER_SECRET_PREVIOUS while rotating), or from a file that -Install writes,
  encrypted for this user with DPAPI, under %LOCALAPPDATA%\RayVault.

  -Install registers a Scheduled Task that runs this script at logon, as this user, in this
  user's desktop session: a worker that runs OPENCLAW_TASK needs that session, which a Windows
  service does not have.

.EXAMPLE
  $env:RAYVAULT_CLUSTER_SECRET = Read-Host -MaskInput "cluster secret"
  .\start_worker.ps1

.EXAMPLE
  .\start_worker.ps1 -Install        # asks for the secret if it is not in the environment

.EXAMPLE
  .\start_worker.ps1 -Uninstall
#>
[CmdletBinding()]
param(
  # The worker id (letters, digits, '.', '_', '-'); default: this computer's name.
  [string]$WorkerId = $env:COMPUTERNAME,
  # The address to listen on; default: the tailnet IPv4 address, else 127.0.0.1.
  # ($Host is PowerShell's own read-only variable, so the parameter has another name.)
  [string]$BindAddress = "",
  [ValidateRange(1, 65535)]
  [int]$Port = 8787,
  [string]$Root = (Join-Path $env:LOCALAPPDATA "RayVault\worker"),
  [string]$WorkerExe = (Join-Path $PSScriptRoot "rayvault-worker.exe"),
  [ValidateRange(0, 256)]
  [int]$Slots = 0,
  [string]$TaskName = "RayVault Worker",
  [switch]$Install,
  [switch]$Uninstall
)

Set-StrictMode -Version Latest
$ErrorActionPreference = "Stop"

$stateDir = Join-Path $env:LOCALAPPDATA "RayVault"
$secretFile = Join-Path $stateDir "cluster-secret.dat"
$previousFile = Join-Path $stateDir "cluster-secret-previous.dat"

function Save-Secret([string]$Path, [System.Security.SecureString]$Secret) {
  New-Item -ItemType Directory -Force -Path (Split-Path $Path) | Out-Null
  # DPAPI, current user scope: only this user on this PC can read it back.
  ConvertFrom-SecureString -SecureString $Secret | Set-Content -Path $Path -Encoding ASCII
}

function Read-SavedSecret([string]$Path) {
  if (-not (Test-Path $Path)) { return "" }
  $secure = Get-Content -Path $Path -Raw | ConvertTo-SecureString
  $bstr = [Runtime.InteropServices.Marshal]::SecureStringToBSTR($secure)
  try { return [Runtime.InteropServices.Marshal]::PtrToStringBSTR($bstr) }
  finally { [Runtime.InteropServices.Marshal]::ZeroFreeBSTR($bstr) }
}

function Get-TailnetAddress {
  $tailscale = Get-Command tailscale -ErrorAction SilentlyContinue
  if ($null -ne $tailscale) {
    $address = (& $tailscale.Source ip -4 2>$null | Select-Object -First 1)
    if ($address) { return $address.Trim() }
  }
  return "127.0.0.1"
}

if ($Uninstall) {
  Unregister-ScheduledTask -TaskName $TaskName -Confirm:$false -ErrorAction SilentlyContinue
  Remove-Item -Force -ErrorAction SilentlyContinue $secretFile, $previousFile
  Write-Host "Removed the scheduled task '$TaskName' and the saved secret."
  return
}

if ($Install) {
  if (-not (Test-Path $WorkerExe)) { throw "rayvault-worker.exe not found at $WorkerExe" }
  if ($env:RAYVAULT_CLUSTER_SECRET) {
    $secure = ConvertTo-SecureString -String $env:RAYVAULT_CLUSTER_SECRET -AsPlainText -Force
  } else {
    $secure = Read-Host -AsSecureString "Cluster secret"
  }
  Save-Secret -Path $secretFile -Secret $secure
  if ($env:RAYVAULT_CLUSTER_SECRET_PREVIOUS) {
    Save-Secret -Path $previousFile -Secret (ConvertTo-SecureString -String $env:RAYVAULT_CLUSTER_SECRET_PREVIOUS -AsPlainText -Force)
  }
  $arguments = @(
    "-NoProfile", "-NonInteractive", "-ExecutionPolicy", "Bypass", "-WindowStyle", "Hidden",
    "-File", "`"$PSCommandPath`"",
    "-WorkerId", $WorkerId, "-Port", $Port, "-Root", "`"$Root`"", "-WorkerExe", "`"$WorkerExe`"",
    "-Slots", $Slots
  )
  if ($BindAddress) { $arguments += @("-BindAddress", $BindAddress) }
  $action = New-ScheduledTaskAction -Execute "powershell.exe" -Argument ($arguments -join " ") -WorkingDirectory $PSScriptRoot
  $trigger = New-ScheduledTaskTrigger -AtLogOn -User "$env:USERDOMAIN\$env:USERNAME"
  $principal = New-ScheduledTaskPrincipal -UserId "$env:USERDOMAIN\$env:USERNAME" -LogonType Interactive -RunLevel Limited
  $settings = New-ScheduledTaskSettingsSet -AllowStartIfOnBatteries -DontStopIfGoingOnBatteries `
    -ExecutionTimeLimit ([TimeSpan]::Zero) -RestartCount 3 -RestartInterval (New-TimeSpan -Minutes 1)
  Register-ScheduledTask -TaskName $TaskName -Action $action -Trigger $trigger -Principal $principal `
    -Settings $settings -Force | Out-Null
  Write-Host "Registered '$TaskName': the worker starts at logon for $env:USERNAME. Start it now with:"
  Write-Host "  Start-ScheduledTask -TaskName '$TaskName'"
  return
}

# Start: the secret from the environment, else from the saved file; never from a parameter.
if (-not $env:RAYVAULT_CLUSTER_SECRET) { $env:RAYVAULT_CLUSTER_SECRET = Read-SavedSecret $secretFile }
if (-not $env:RAYVAULT_CLUSTER_SECRET_PREVIOUS) {
  $previous = Read-SavedSecret $previousFile
  if ($previous) { $env:RAYVAULT_CLUSTER_SECRET_PREVIOUS = $previous }
}
if (-not $env:RAYVAULT_CLUSTER_SECRET) {
  throw "No cluster secret: set RAYVAULT_CLUSTER_SECRET, or run this script with -Install."
}
if (-not (Test-Path $WorkerExe)) { throw "rayvault-worker.exe not found at $WorkerExe" }
if (-not $BindAddress) { $BindAddress = Get-TailnetAddress }

New-Item -ItemType Directory -Force -Path $Root | Out-Null
$env:RAYVAULT_WORKER_HOST = $BindAddress
$env:RAYVAULT_WORKER_PORT = "$Port"
$env:RAYVAULT_WORKER_ROOT = $Root
$env:RAYVAULT_WORKER_ID = $WorkerId
if ($Slots -gt 0) { $env:RAYVAULT_WORKER_SLOTS = "$Slots" }

Write-Host "Starting rayvault-worker $WorkerId on ${BindAddress}:$Port (root $Root)"
# In the foreground: Ctrl-C and Ctrl-Break reach the worker, which stops its jobs' process trees.
& $WorkerExe
exit $LASTEXITCODE
