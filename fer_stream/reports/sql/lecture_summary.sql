-- lecture_summary: per lecture: class engagement index, the lowest-attention moments to review
-- with their timestamps, and data quality (frames with no faces, unmeasured and stray faces,
-- failed videos).
--
-- Definitions (docs/ATTENTION.md, docs/REPORTS.md):
-- * one row per video in the videos/ run log within the scope, its latest run deciding `status`
--   (done or failed, with error_type and error_message); failed_runs counts all its failed runs.
--   A failed video has no records: its numbers are null.
-- * buckets as in lecture_timeline: bucket k holds k * $bucket_s <= pts_s < (k + 1) * $bucket_s; a
--   bucket's class attention = mean attention score of the students' measured faces in it.
-- * engagement_index = 100 x the mean of the class attention over the lecture's buckets that have
--   a measured face (each bucket weighs the same, however many faces it holds), in [0, 100].
-- * attention_rate = attentive / (attentive + inattentive) student faces in the lecture.
-- * review_moments = the $moments buckets of lowest class attention, lowest first, as
--   'start-end (class attention)', times h:mm:ss from the start of the video.
-- * students = students seen for at least $min_visible_s seconds; frames_no_faces = sampled frames
--   in which no face was found; unmeasured_share = student faces without an attention score;
--   attention_readable_share = 1 - unmeasured_share; emotion_readable_share = student faces big
--   enough to read an emotion from (docs/VALIDITY.md; the others count in no emotion number);
--   stray_faces = faces of no student that are not static (short tracks matching no student);
--   static_faces = faces of tracks judged pictures, not people (posters, photos, frozen screens:
--   the records' `static`, docs/VALIDITY.md), counted in nothing else.
-- * head_up_rate = the mean over sampled frames of the frame's head-up rate (students facing the
--   front / students whose head state was read in that frame; frames with no read left out);
--   head_known_share = head states read / (students x frames sampled) (head_up_frames, _head_up.sql).
-- * speech (docs/REPORTS.md "Speech"): speech_share = seconds inside a stretch of speech (speech/)
--   / the lecture's seconds (declared duration, else the sampled frames'); longest_speech_s = the
--   longest stretch of speech without a pause of the detector's min_silence_s (0.3 s) or more;
--   long_silences = pauses between stretches (and before the first, after the last) of at least
--   $silence_s seconds. All three are null when the lecture's audio was not analysed (no audio
--   track, a broken one, the speech signal off, older records: the `speech` column says which).
-- Parameters: $course, $date_from, $date_to (inclusive), $video (id or prefix), $bucket_s
-- (seconds), $moments (count), $min_visible_s (seconds), $silence_s (seconds).

with

runs as (
    select
        *,
        row_number() over (
            partition by video_id order by finished_at desc nulls last, run_id desc
        ) as nth_latest,
        count(*) filter (where status = 'failed') over (partition by video_id) as failed_runs
    from videos
),

latest_runs as (
    -- the scope applies to the latest run: a video whose course or date was corrected since an
    -- older run is only where it is now
    select *
    from runs
    where nth_latest = 1
        and ($course is null or course = $course)
        and ($date_from is null or lecture_date >= $date_from)
        and ($date_to is null or lecture_date <= $date_to)
        and ($video is null or starts_with(video_id, $video))
),

scope as (
    select video_id, frame_s, duration_s, speech
    from lectures
    where video_id in (select video_id from latest_runs)
),

speech_runs as (
    select
        video_id,
        end_s - start_s as speech_s,
        end_s,
        -- the pause before this stretch: from the previous one's end, or from the start
        start_s - coalesce(lag(end_s) over (partition by video_id order by start_s), 0) as silence_before_s
    from speech
    where video_id in (select video_id from scope)
),

speech_stats as (
    select
        video_id,
        sum(speech_s) as speech_s,
        max(speech_s) as longest_speech_s,
        count(*) filter (where silence_before_s >= $silence_s) as silences_before,
        max(end_s) as last_end_s
    from speech_runs
    group by video_id
),

frame_stats as (
    select
        video_id,
        count(*) as frames_sampled,
        count(*) filter (where n_faces = 0) as frames_no_faces
    from frames
    where video_id in (select video_id from scope)
    group by video_id
),

face_stats as (
    select
        video_id,
        count(*) filter (where student_id is null and not static) as stray_faces,
        count(*) filter (where static) as static_faces,
        count(*) filter (where student_id is not null) as student_faces,
        count(attention) filter (where student_id is not null) as measured_faces,
        count(emotion) filter (where student_id is not null) as emotion_readable_faces,
        count(*) filter (where student_id is not null and attentive) as attentive_faces
    from faces
    where video_id in (select video_id from scope)
    group by video_id
),

student_frames as (
    select video_id, student_id, count(*) as frames_visible
    from faces
    where video_id in (select video_id from scope) and student_id is not null
    group by video_id, student_id
),

students as (
    select student_frames.video_id, count(*) as students
    from student_frames
    inner join scope on student_frames.video_id = scope.video_id
    where student_frames.frames_visible * scope.frame_s >= $min_visible_s
    group by student_frames.video_id
),

buckets as (
    -- class attention per bucket, buckets with at least one measured student face only
    select
        video_id,
        cast(floor(pts_s / $bucket_s) as bigint) as bucket,
        avg(attention) as class_attention
    from faces
    where video_id in (select video_id from scope) and student_id is not null and attention is not null
    group by all
),

engagement as (
    select video_id, 100 * avg(class_attention) as engagement_index
    from buckets
    group by video_id
),

head_up as (
    select
        video_id,
        avg(head_up_rate) as head_up_rate,
        sum(students_known) / nullif(sum(students_present), 0) as head_known_share
    from head_up_frames(null, null, null, null)
    where video_id in (select video_id from scope)
    group by video_id
),

ranked_buckets as (
    select
        *,
        row_number() over (partition by video_id order by class_attention, bucket) as low_rank
    from buckets
),

moments as (
    select
        video_id,
        string_agg(
            format(
                '{}-{} ({:.2f})',
                cast(to_seconds(cast(floor(bucket * $bucket_s) as bigint)) as varchar),
                cast(to_seconds(cast(floor((bucket + 1) * $bucket_s) as bigint)) as varchar),
                class_attention
            ),
            '; '
            order by low_rank
        ) as review_moments
    from ranked_buckets
    where low_rank <= $moments
    group by video_id
),

final as (
    select
        latest_runs.course,
        latest_runs.lecture_date,
        latest_runs.video_id,
        latest_runs.path,
        latest_runs.status,
        latest_runs.error_type,
        latest_runs.error_message,
        latest_runs.failed_runs,
        frame_stats.frames_sampled * scope.frame_s / 60 as minutes_analysed,
        frame_stats.frames_sampled,
        frame_stats.frames_no_faces,
        frame_stats.frames_no_faces / frame_stats.frames_sampled as no_face_share,
        case when scope.video_id is not null then coalesce(students.students, 0) end as students,
        engagement.engagement_index,
        face_stats.attentive_faces
        / nullif(face_stats.measured_faces, 0) as attention_rate,
        head_up.head_up_rate,
        head_up.head_known_share,
        1 - face_stats.measured_faces / nullif(face_stats.student_faces, 0) as unmeasured_share,
        face_stats.measured_faces / nullif(face_stats.student_faces, 0) as attention_readable_share,
        face_stats.emotion_readable_faces / nullif(face_stats.student_faces, 0) as emotion_readable_share,
        case when scope.video_id is not null then coalesce(face_stats.stray_faces, 0) end as stray_faces,
        case when scope.video_id is not null then coalesce(face_stats.static_faces, 0) end as static_faces,
        moments.review_moments,
        scope.speech,
        case when scope.speech = 'done' then
            coalesce(speech_stats.speech_s, 0)
            / nullif(coalesce(scope.duration_s, frame_stats.frames_sampled * scope.frame_s), 0)
        end as speech_share,
        case when scope.speech = 'done' then coalesce(speech_stats.longest_speech_s, 0) end as longest_speech_s,
        case when scope.speech = 'done' then
            coalesce(speech_stats.silences_before, 0)
            + case
                when coalesce(scope.duration_s, frame_stats.frames_sampled * scope.frame_s)
                    - coalesce(speech_stats.last_end_s, 0) >= $silence_s then 1
                else 0
            end
        end as long_silences,
        latest_runs.lost_s,
        latest_runs.corrupt_packets
    from latest_runs
    left join scope on latest_runs.video_id = scope.video_id
    left join frame_stats on latest_runs.video_id = frame_stats.video_id
    left join face_stats on latest_runs.video_id = face_stats.video_id
    left join students on latest_runs.video_id = students.video_id
    left join engagement on latest_runs.video_id = engagement.video_id
    left join moments on latest_runs.video_id = moments.video_id
    left join head_up on latest_runs.video_id = head_up.video_id
    left join speech_stats on latest_runs.video_id = speech_stats.video_id
    order by latest_runs.course, latest_runs.lecture_date, latest_runs.video_id
)

select * from final
